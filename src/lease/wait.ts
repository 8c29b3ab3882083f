import { validateTimeoutMs } from "../call.js";
import { formatDurationMs } from "../duration.js";
import {
  DeadlineExceededError,
  InvalidArgumentError,
  LeaseTimeoutError,
  NotFoundError,
  isJumpstarterError,
  type JumpstarterError,
} from "../errors.js";
import type { Lease } from "../generated.js";
import { toResourceName } from "../names.js";
import type { LeaseContext } from "./context.js";
import { describeLeaseState, evaluateLease, type LeaseState } from "./state.js";

/** Upper bound of the delay before the first poll, in milliseconds. */
export const DEFAULT_POLL_MIN_DELAY_MS = 250;
/** Cap of the delay between polls, in milliseconds: the fixed interval at which `jmp` polls. */
export const DEFAULT_POLL_MAX_DELAY_MS = 5_000;
/** Default timeout of a wait for a lease, in milliseconds: two hours, as `jmp` waits. */
export const DEFAULT_LEASE_TIMEOUT_MS = 2 * 60 * 60 * 1000;

/** Bounds of the poll schedule of {@link pollDelayMs}. */
export interface PollScheduleOptions {
  /** Upper bound of the first delay, in milliseconds; each later delay doubles it. Default 250, or `maxDelayMs` when that is lower. */
  minDelayMs?: number;
  /** Cap of every delay, in milliseconds. Default 5,000, or `minDelayMs` when that is higher. */
  maxDelayMs?: number;
}

/** One report of {@link WaitForLeaseOptions.onProgress}. */
export type LeaseProgress =
  | {
      /** The lease's state changed; the first read always reports. */
      kind: "state";
      /** Full resource name of the lease. */
      name: string;
      /** Time since the wait started, in milliseconds. */
      elapsedMs: number;
      state: LeaseState;
      lease: Lease;
    }
  | {
      /** A read failed with an error that the wait outlasts, such as UNAVAILABLE; polling goes on. */
      kind: "error";
      name: string;
      elapsedMs: number;
      error: JumpstarterError;
    };

/** Options of `waitForLease`. */
export interface WaitForLeaseOptions extends PollScheduleOptions {
  /** How long to wait for `Ready`, in milliseconds. Default: the client's `leaseTimeoutMs` (two hours). */
  timeoutMs?: number;
  /** Stops the wait; it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Called on each change of the lease's state and on each failed read that polling outlasts. An
   * exception it throws goes to the logger and does not stop the wait.
   */
  onProgress?: (progress: LeaseProgress) => void;
}

/** Settings of a wait that only the SDK's own helpers pass. */
export interface WaitInternals {
  /** The lease as just created, evaluated before the first poll instead of reading it at once. */
  initial?: Lease;
  /**
   * How long after the start NOT_FOUND counts as a transient error, in milliseconds. A lease just
   * created may not be readable yet from a controller that reads through a cache.
   */
  notFoundGraceMs?: number;
}

/**
 * Validates the bounds of a poll schedule and fills in the defaults.
 *
 * @throws InvalidArgumentError for a bound that is not a positive number of milliseconds, or a
 *   `maxDelayMs` below `minDelayMs`.
 */
export function resolvePollSchedule(options: PollScheduleOptions = {}): Required<PollScheduleOptions> {
  const givenMin = validateTimeoutMs(options.minDelayMs, "minDelayMs");
  const givenMax = validateTimeoutMs(options.maxDelayMs, "maxDelayMs");
  // A bound left out follows the other when the given one is outside its default range.
  const minDelayMs = givenMin ?? Math.min(DEFAULT_POLL_MIN_DELAY_MS, givenMax ?? Infinity);
  const maxDelayMs = givenMax ?? Math.max(DEFAULT_POLL_MAX_DELAY_MS, minDelayMs);
  if (maxDelayMs < minDelayMs) {
    throw new InvalidArgumentError(`invalid maxDelayMs ${maxDelayMs}: it must be at least minDelayMs (${minDelayMs}).`);
  }
  return { minDelayMs, maxDelayMs };
}

/**
 * Computes the delay before poll number `attempt` (0 for the first), in whole milliseconds.
 *
 * The base doubles with each attempt from `minDelayMs`, and jitter picks a point in its upper half,
 * `[base / 2, base)`, from `random` in [0, 1). The result is capped at `maxDelayMs`. With the
 * defaults the first poll comes within 250 ms, and from the seventh on every delay is exactly
 * 5 s, so a long wait polls at the rate of `jmp`'s fixed 5 s interval. The jitter of the early
 * polls spreads clients that started together over that interval.
 */
export function pollDelayMs(attempt: number, random: number, options: PollScheduleOptions = {}): number {
  const { minDelayMs, maxDelayMs } = resolvePollSchedule(options);
  const base = minDelayMs * 2 ** Math.max(0, attempt);
  const jittered = base * (0.5 + 0.5 * Math.min(Math.max(random, 0), 1));
  return Math.round(Math.min(maxDelayMs, jittered));
}

/**
 * Tells whether a failed read of a lease may succeed when repeated: UNAVAILABLE, a broken
 * connection, or a read that ran out of its own deadline.
 */
export function isTransientError(error: unknown): error is JumpstarterError {
  return isJumpstarterError(error) && (error.retryable || error instanceof DeadlineExceededError);
}

/**
 * Polls a lease until it is `Ready=True` and resolves with it. See {@link evaluateLease} for the
 * conditions that end the wait with an error.
 *
 * Reads that fail transiently are reported to `onProgress` and retried on the same schedule until
 * the deadline; any other failed read rejects at once.
 *
 * @throws LeaseTimeoutError at the deadline, naming the lease, the time waited and the last state seen.
 * @throws the signal's reason when `options.signal` aborts, and `ClientClosedError` when the client closes.
 */
export async function waitForLease(
  context: LeaseContext,
  name: string,
  options: WaitForLeaseOptions = {},
  internals: WaitInternals = {},
): Promise<Lease> {
  const resource = toResourceName(name, "leases", context.namespace);
  const timeoutMs = validateTimeoutMs(options.timeoutMs) ?? context.leaseTimeoutMs;
  const schedule = resolvePollSchedule(options);
  const { clock } = context;
  const signal = options.signal ? AbortSignal.any([options.signal, context.closedSignal]) : context.closedSignal;
  signal.throwIfAborted();

  const startedAt = clock.now();
  const deadline = startedAt + timeoutMs;
  const progress = new ProgressReporter(context, resource, startedAt, options.onProgress);

  const read = async (): Promise<Lease | undefined> => {
    try {
      const timeout = Math.min(context.callTimeoutMs, Math.max(1, deadline - clock.now()));
      // Each poll is one attempt: the poll schedule is the retry, and every failure goes to onProgress.
      const lease = await context.rpc.getLease(resource, { signal, timeoutMs: timeout, retry: false });
      progress.lastError = undefined;
      return lease;
    } catch (error) {
      const justCreated = error instanceof NotFoundError && clock.now() - startedAt < (internals.notFoundGraceMs ?? 0);
      if (signal.aborted || !(isTransientError(error) || justCreated)) throw error;
      progress.error(error as JumpstarterError);
      return undefined;
    }
  };

  let lease = internals.initial ?? (await read());
  for (let attempt = 0; ; attempt++) {
    if (lease !== undefined) {
      progress.state(lease);
      const outcome = evaluateLease(lease);
      if (outcome.kind === "ready") return lease;
      if (outcome.kind === "failed") throw outcome.error;
    }

    const delayMs = pollDelayMs(attempt, clock.random(), schedule);
    const remainingMs = deadline - clock.now();
    if (remainingMs <= 0) throw progress.timeoutError();
    await clock.sleep(Math.min(delayMs, remainingMs), { signal });
    if (clock.now() >= deadline) throw progress.timeoutError();

    lease = await read();
  }
}

/** Sends a wait's reports to `onProgress` and keeps what the timeout message needs. */
class ProgressReporter {
  lastError: JumpstarterError | undefined;
  #lastState: LeaseState | undefined;
  #lastLease: Lease | undefined;
  #lastKey = "";

  constructor(
    private readonly context: LeaseContext,
    private readonly name: string,
    private readonly startedAt: number,
    private readonly onProgress: WaitForLeaseOptions["onProgress"],
  ) {}

  state(lease: Lease): void {
    const state = describeLeaseState(lease);
    this.#lastLease = lease;
    this.#lastState = state;
    const key = [state.type, state.status, state.reason, state.message].join("\u0000");
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    this.context.logger.debug("lease state changed", { lease: this.name, state: state.summary });
    this.#emit({ kind: "state", name: this.name, elapsedMs: this.#elapsed(), state, lease });
  }

  error(error: JumpstarterError): void {
    this.lastError = error;
    this.context.logger.debug("reading the lease failed; polling goes on", { lease: this.name, error: error.message });
    this.#emit({ kind: "error", name: this.name, elapsedMs: this.#elapsed(), error });
  }

  timeoutError(): LeaseTimeoutError {
    const waitedMs = this.#elapsed();
    const lastState = this.#lastState?.summary ?? "the lease was never read";
    const lastError = this.lastError ? `; the last read failed: ${this.lastError.message}` : "";
    return new LeaseTimeoutError(
      `lease "${this.name}" was not ready after ${formatDurationMs(waitedMs)}; last state: ${lastState}${lastError}. ` +
        "Raise timeoutMs, or check with listExporters() that a matching exporter is online and not leased.",
      {
        resource: this.name,
        waitedMs,
        reason: this.#lastState?.reason,
        conditionMessage: this.#lastState?.message,
        lease: this.#lastLease,
        cause: this.lastError,
      },
    );
  }

  #elapsed(): number {
    return this.context.clock.now() - this.startedAt;
  }

  #emit(progress: LeaseProgress): void {
    if (!this.onProgress) return;
    try {
      this.onProgress(progress);
    } catch (error) {
      this.context.logger.warn("the onProgress callback threw; the wait goes on", { lease: this.name, error: String(error) });
    }
  }
}
