import { v7 as uuidv7 } from "uuid";
import { validateTimeoutMs } from "../call.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  JumpstarterError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  isJumpstarterError,
} from "../errors.js";
import type { Exporter, Lease } from "../generated.js";
import { buildCreateLeaseRequest, type LeaseSpec } from "../lease-spec.js";
import { isLeaseEnded, leaseExporterId } from "../lease-status.js";
import { formatResourceName, shortId, toResourceName } from "../names.js";
import { formatSelector, parseSelector } from "../selector.js";
import type { HeldLease, LeaseContext } from "./context.js";
import { LeaseHandle, validateLeaseHandleOptions, type LeaseHandleOptions } from "./handle.js";
import { releaseLease } from "./release.js";
import { leaseEndedError } from "./state.js";
import {
  isTransientError,
  pollDelayMs,
  resolvePollSchedule,
  waitForLease,
  type LeaseProgress,
  type WaitForLeaseOptions,
} from "./wait.js";

/** Request of `acquireLease` and `withLease`: what to lease, how long to wait, and how to hold it. */
export interface AcquireLeaseRequest extends LeaseSpec, WaitForLeaseOptions, LeaseHandleOptions {}

/** Options of `attachLease`. */
export interface AttachLeaseOptions extends WaitForLeaseOptions, LeaseHandleOptions {}

// How long after creation a NOT_FOUND from GetLease is taken for a read cache that has not caught up.
// NOTE: a precaution, not a measured need. A controller that reads through a cache may miss a lease
// it has just created, and whether and for how long the Jumpstarter controller does is not known.
const CREATED_LEASE_NOT_FOUND_GRACE_MS = 10_000;

// Errors with which the controller rejects a create before it stores anything.
const REJECTIONS = [InvalidArgumentError, PermissionDeniedError, UnauthenticatedError, FailedPreconditionError, NotFoundError];

/**
 * Creates a lease, waits until it is ready and returns a {@link LeaseHandle} for it.
 *
 * The lease id is a client-generated UUIDv7 unless `request.leaseId` is given, so a create that is
 * repeated after a lost response cannot make a second lease. When the controller reports that the
 * id exists, the existing lease is taken over if this client made it with the same selector and
 * exporter. Transient create failures are retried within the timeout.
 *
 * When anything fails after the lease may have been created (timeout, abort, an unsatisfiable
 * lease, an error), the lease is deleted before the error is rethrown.
 *
 * @throws InvalidArgumentError before any RPC for an invalid spec or option, and the errors of
 *   `waitForLease`.
 */
export async function acquireLease(context: LeaseContext, request: AcquireLeaseRequest): Promise<LeaseHandle> {
  const leaseId = request.leaseId ?? uuidv7();
  const spec: LeaseSpec = { ...pickLeaseSpec(request), leaseId };
  const createRequest = buildCreateLeaseRequest(spec, context.namespace);
  validateLeaseHandleOptions(request);
  resolvePollSchedule(request);
  const timeoutMs = validateTimeoutMs(request.timeoutMs) ?? context.leaseTimeoutMs;

  const { clock } = context;
  const name = formatResourceName(context.namespace, "leases", createRequest.leaseId);
  const startedAt = clock.now();
  const deadline = startedAt + timeoutMs;
  const signal = request.signal ? AbortSignal.any([request.signal, context.closedSignal]) : context.closedSignal;
  signal.throwIfAborted();

  // Until a handle exists, this entry lets releaseOnExit delete a lease that is still being created or awaited.
  const pending: HeldLease = { name, release: () => releaseLease(context, name).then(() => {}) };
  context.held.add(pending);
  const attempt = { mayExist: false };
  try {
    const reportError = (error: JumpstarterError) =>
      reportProgress(context, request.onProgress, { kind: "error", name, elapsedMs: clock.now() - startedAt, error });
    const created = await retryTransient(context, { deadline, signal, onError: reportError }, async (timeoutMs) => {
      try {
        // The loop around this call retries with the lease schedule and reports each failure, so the
        // client-level retry is off here to keep the two from stacking.
        const lease = await context.rpc.createLease(spec, { signal, timeoutMs, retry: false });
        attempt.mayExist = true;
        return lease;
      } catch (error) {
        if (error instanceof AlreadyExistsError) return takeOverExisting(context, name, createRequest.lease!, attempt, signal);
        // A create that timed out, broke off or was aborted may have reached the controller.
        if (!REJECTIONS.some((type) => error instanceof type)) attempt.mayExist = true;
        throw error;
      }
    });

    const waitOptions = { ...request, timeoutMs: Math.max(1, deadline - clock.now()) };
    const ready = await waitForLease(context, name, waitOptions, { initial: created, notFoundGraceMs: CREATED_LEASE_NOT_FOUND_GRACE_MS });
    const exporter = await readExporter(context, ready, { deadline, signal, onError: reportError });
    context.held.delete(pending);
    return new LeaseHandle(context, ready, exporter, request);
  } catch (error) {
    context.held.delete(pending);
    if (attempt.mayExist) await discardLease(context, name, error);
    throw error;
  }
}

/**
 * Acquires a lease, runs `fn` with it, and releases it whether `fn` returns, throws or is aborted.
 * When `fn` fails, its error is rethrown and a failed release goes to the logger and
 * `onReleaseError`. When `fn` succeeds, a failed release rejects.
 */
export async function withLease<T>(
  context: LeaseContext,
  request: AcquireLeaseRequest,
  fn: (lease: LeaseHandle) => Promise<T> | T,
): Promise<T> {
  const lease = await acquireLease(context, request);
  let result: T;
  try {
    result = await fn(lease);
  } catch (error) {
    await lease[Symbol.asyncDispose]();
    throw error;
  }
  await lease.release();
  return result;
}

/**
 * Returns a {@link LeaseHandle} for an existing lease of this client, such as one named by
 * `JMP_LEASE`, after waiting until it is ready. A failure leaves the lease as it is.
 *
 * @throws LeaseEndedError when the lease has ended.
 * @throws PermissionDeniedError when the lease belongs to another client.
 * @throws NotFoundError when no such lease exists.
 */
export async function attachLease(context: LeaseContext, name: string, options: AttachLeaseOptions = {}): Promise<LeaseHandle> {
  const resource = toResourceName(name, "leases", context.namespace);
  validateLeaseHandleOptions(options);
  const timeoutMs = validateTimeoutMs(options.timeoutMs) ?? context.leaseTimeoutMs;
  const deadline = context.clock.now() + timeoutMs;
  const signal = options.signal ? AbortSignal.any([options.signal, context.closedSignal]) : context.closedSignal;

  let lease: Lease;
  try {
    lease = await context.rpc.getLease(resource, { signal });
  } catch (error) {
    if (error instanceof PermissionDeniedError) throw notOwnedError(context, resource, undefined, error);
    throw error;
  }
  const owner = context.clientName && formatResourceName(context.namespace, "clients", context.clientName);
  if (owner && lease.client && lease.client !== owner) throw notOwnedError(context, resource, lease.client);
  if (isLeaseEnded(lease)) throw leaseEndedError(lease, "before it could be attached");

  const ready = await waitForLease(context, resource, { ...options, timeoutMs: Math.max(1, deadline - context.clock.now()) }, { initial: lease });
  const exporter = await readExporter(context, ready, { deadline, signal, onError: () => {} });
  return new LeaseHandle(context, ready, exporter, options);
}

/** Calls `onProgress`, and logs an exception it throws instead of letting it stop the caller. */
function reportProgress(context: LeaseContext, onProgress: ((progress: LeaseProgress) => void) | undefined, progress: LeaseProgress): void {
  try {
    onProgress?.(progress);
  } catch (error) {
    context.logger.warn("the onProgress callback threw; acquiring goes on", { lease: progress.name, error: String(error) });
  }
}

interface RetryBounds {
  /** Time at which retrying stops, in ms since the epoch. */
  deadline: number;
  signal: AbortSignal;
  onError: (error: JumpstarterError) => void;
}

// Runs `call` until it succeeds, retrying transient failures with the poll schedule's backoff
// until the deadline. `call` receives the deadline of its own RPC.
async function retryTransient<T>(context: LeaseContext, bounds: RetryBounds, call: (timeoutMs: number) => Promise<T>): Promise<T> {
  const { clock } = context;
  for (let attempt = 0; ; attempt++) {
    const remainingMs = bounds.deadline - clock.now();
    try {
      return await call(Math.max(1, Math.min(context.callTimeoutMs, remainingMs)));
    } catch (error) {
      const delayMs = pollDelayMs(attempt, clock.random());
      if (bounds.signal.aborted || !isTransientError(error) || clock.now() + delayMs >= bounds.deadline) throw error;
      bounds.onError(error);
      await clock.sleep(delayMs, { signal: bounds.signal });
    }
  }
}

// Takes over the lease that holds our id when this client created it for the same request: the
// create of an earlier attempt reached the controller but its response was lost.
async function takeOverExisting(
  context: LeaseContext,
  name: string,
  requested: Lease,
  attempt: { mayExist: boolean },
  signal: AbortSignal,
): Promise<Lease> {
  const mismatch = (detail: string, cause?: unknown) => {
    // The lease under this id is someone else's, so it must survive this failure.
    attempt.mayExist = false;
    return new AlreadyExistsError(
      `cannot create lease "${name}": a lease with that id already exists and ${detail}. Leave leaseId unset to get a fresh id.`,
      { resource: name, cause },
    );
  };

  let existing: Lease;
  try {
    existing = await context.rpc.getLease(name, { signal });
  } catch (error) {
    if (error instanceof PermissionDeniedError) throw mismatch("belongs to another client", error);
    throw error;
  }
  const owner = context.clientName && formatResourceName(context.namespace, "clients", context.clientName);
  if (owner && existing.client && existing.client !== owner) throw mismatch(`belongs to client "${existing.client}"`);
  if (canonicalSelector(existing.selector) !== canonicalSelector(requested.selector)) {
    throw mismatch(`has another selector ("${existing.selector}")`);
  }
  if ((existing.exporterName ?? "") !== (requested.exporterName ?? "")) {
    throw mismatch(`requests another exporter ("${existing.exporterName ?? ""}")`);
  }
  attempt.mayExist = true;
  context.logger.info("took over the lease that an earlier create made", { lease: name });
  return existing;
}

async function readExporter(context: LeaseContext, lease: Lease, bounds: RetryBounds): Promise<Exporter> {
  const exporterId = leaseExporterId(lease);
  if (exporterId === undefined) {
    throw new JumpstarterError(`lease "${lease.name}" is ready but names no exporter; the controller sent an incomplete lease.`, {
      resource: lease.name,
    });
  }
  return retryTransient(context, bounds, (timeoutMs) => context.rpc.getExporter(exporterId, { signal: bounds.signal, timeoutMs, retry: false }));
}

// Deletes a lease that acquiring gave up on, without the caller's signal, and logs instead of
// throwing so that the caller sees the error that made it give up.
async function discardLease(context: LeaseContext, name: string, reason: unknown): Promise<void> {
  try {
    const result = await releaseLease(context, name);
    context.logger.debug("deleted the lease after acquiring it failed", { lease: name, result, reason: describe(reason) });
  } catch (error) {
    context.logger.error("could not delete the lease after acquiring it failed; it stays until it ends", {
      lease: name,
      error: describe(error),
      reason: describe(reason),
    });
  }
}

function notOwnedError(context: LeaseContext, name: string, owner: string | undefined, cause?: unknown): PermissionDeniedError {
  const by = owner ? ` client "${shortId(owner)}"` : " another client";
  const self = context.clientName ? ` "${context.clientName}"` : "";
  return new PermissionDeniedError(
    `cannot attach lease "${name}": it belongs to${by}, not to this client${self}. Attach only leases of this client.`,
    { resource: name, cause },
  );
}

// The controller echoes the selector in canonical form, and `<none>` when it is empty.
function canonicalSelector(selector: string): string {
  if (selector === "" || selector === "<none>") return "";
  try {
    return formatSelector(parseSelector(selector));
  } catch {
    return selector;
  }
}

function pickLeaseSpec(request: AcquireLeaseRequest): LeaseSpec {
  const { selector, exporterName, duration, beginTime, endTime, tags, context, allowDisabled } = request;
  return { selector, exporterName, duration, beginTime, endTime, tags, context, allowDisabled };
}

function describe(value: unknown): string {
  if (isJumpstarterError(value) || value instanceof Error) return value.message;
  return String(value);
}
