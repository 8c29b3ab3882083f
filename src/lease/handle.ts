import type { CallOptions } from "../call.js";
import { durationMessageToMs, parseDurationMs, timestampToDate, type DurationInput } from "../duration.js";
import {
  InvalidArgumentError,
  JumpstarterError,
  LeaseEndedError,
  NotFoundError,
  PermissionDeniedError,
} from "../errors.js";
import type { Exporter, Lease } from "../generated.js";
import type { LeaseChanges } from "../lease-spec.js";
import { isLeaseEnded, leaseEndsAt, leaseExporterId } from "../lease-status.js";
import { formatResourceName, shortId } from "../names.js";
import type { LeaseContext } from "./context.js";
import { releaseLease } from "./release.js";
import { leaseEndedError } from "./state.js";

/** Automatic extension of a held lease; see {@link LeaseHandleOptions.autoExtend}. */
export interface AutoExtendOptions {
  /** Time added by each extension: milliseconds or a duration string such as `"15m"`. */
  by: DurationInput;
  /** How long before the end of the lease to extend it, in milliseconds. */
  beforeEndMs: number;
  /**
   * Maximum length of the lease from its start, extensions included: milliseconds or a duration
   * string. The last extension is shortened to end exactly there, and then extension stops.
   */
  maxTotal: DurationInput;
}

/** Options of the {@link LeaseHandle} that `acquireLease` and `attachLease` return. */
export interface LeaseHandleOptions {
  /** Extends the lease while it is held, never past `maxTotal`. Default: no extension. */
  autoExtend?: AutoExtendOptions;
  /**
   * Called when `[Symbol.asyncDispose]` could not release the lease; the error also goes to the
   * logger. An exception it throws is logged and dropped.
   */
  onReleaseError?: (error: unknown, lease: LeaseHandle) => void;
  /**
   * Interval, in milliseconds, at which a handle with an `onEnded` callback re-reads the lease to
   * notice a release by another process or a transfer. It also re-reads at the planned end.
   * Default 30,000.
   */
  watchIntervalMs?: number;
}

/** Argument of an {@link LeaseHandle.onEnding} callback. */
export interface LeaseEndingEvent {
  /** Full resource name of the lease. */
  name: string;
  /** When the lease ends. */
  endsAt: Date;
  /** Time left until then, in milliseconds. */
  remainingMs: number;
}

/** Default of {@link LeaseHandleOptions.watchIntervalMs}, in milliseconds. */
export const DEFAULT_LEASE_WATCH_INTERVAL_MS = 30_000;

// After the planned end has passed but the controller has not yet ended the lease, the watch
// re-reads it at this interval instead of spinning.
const PAST_END_RECHECK_MS = 1_000;
// A failed automatic extension is tried again after this delay, if the lease still runs.
const AUTO_EXTEND_RETRY_MS = 5_000;

type HandleStatus = "held" | "releasing" | "released" | "ended";

interface EndingSubscription {
  thresholdMs: number;
  callback: (event: LeaseEndingEvent) => void;
  fired: boolean;
}

interface AutoExtendPlan {
  byMs: number;
  beforeEndMs: number;
  maxTotalMs: number;
  /** Earliest time of the next try, in ms since the epoch, after a failed one. */
  notBefore: number;
  /** Whether a step runs now; its reads reschedule the timers, which must not start a second step. */
  running: boolean;
}

/**
 * A lease that this client holds, as `acquireLease` and `attachLease` return it.
 *
 * Release it with `release()`, or let `await using` do it. Timers of `onEnding`, `onEnded` and
 * `autoExtend` never keep the process alive, and they stop when the lease is released, when it
 * ends, or when the client closes.
 */
export class LeaseHandle implements AsyncDisposable {
  /** Full resource name: `namespaces/{ns}/leases/{id}`. */
  readonly name: string;
  /** Lease id, the last segment of `name`. */
  readonly id: string;
  /** Short id of the exporter assigned to the lease. */
  readonly exporter: string;
  /** Labels of that exporter, read with GetExporter when the lease became ready. */
  readonly exporterLabels: Readonly<Record<string, string>>;

  readonly #context: LeaseContext;
  readonly #options: LeaseHandleOptions;
  readonly #watchIntervalMs: number;
  #lease: Lease;
  #status: HandleStatus = "held";
  #releasing: Promise<void> | undefined;
  #endedError: LeaseEndedError | undefined;
  #timers = new AbortController();
  #ending: EndingSubscription[] = [];
  readonly #ended = new Set<(error: LeaseEndedError) => void>();
  #autoExtend: AutoExtendPlan | undefined;

  /**
   * Wraps a ready lease. Use `client.acquireLease()` or `client.attachLease()` instead, which
   * read the exporter and register the handle with the client.
   *
   * @internal
   */
  constructor(context: LeaseContext, lease: Lease, exporter: Exporter, options: LeaseHandleOptions = {}) {
    this.#context = context;
    this.#options = options;
    this.#lease = lease;
    this.name = lease.name;
    this.id = shortId(lease.name);
    this.exporter = leaseExporterId(lease) ?? shortId(exporter.name);
    this.exporterLabels = Object.freeze({ ...exporter.labels });
    this.#watchIntervalMs = options.watchIntervalMs ?? DEFAULT_LEASE_WATCH_INTERVAL_MS;
    this.#autoExtend = options.autoExtend && planAutoExtend(options.autoExtend);
    context.held.add(this);
    this.#reschedule();
  }

  /** The lease as last read or updated. */
  get lease(): Lease {
    return this.#lease;
  }

  /** When the lease ends, as last read; `undefined` when the controller reported no end. */
  get endsAt(): Date | undefined {
    return leaseEndsAt(this.#lease);
  }

  /** Whether the lease is still held: not released by this handle and not seen to have ended. */
  get held(): boolean {
    return this.#status === "held" || this.#status === "releasing";
  }

  /**
   * Reads the lease again. When it has ended, the `onEnded` callbacks run.
   *
   * @throws the read's error, such as `PermissionDeniedError` when the lease was transferred.
   */
  async refresh(options?: CallOptions): Promise<Lease> {
    const lease = await this.#context.rpc.getLease(this.name, options);
    this.#setLease(lease);
    return lease;
  }

  /**
   * Moves the end of the lease later by `by` (milliseconds or a duration string). It reads the
   * lease first and adds to what the controller holds, so an extension made elsewhere in the
   * meantime is kept and the lease never gets shorter, as it could with a plain duration update.
   *
   * @throws InvalidArgumentError for a duration that is not positive, before any RPC.
   * @throws LeaseEndedError when the lease has ended.
   */
  async extend(by: DurationInput, options?: CallOptions): Promise<Lease> {
    const byMs = parseDurationMs(by, "extension");
    const current = await this.refresh(options);
    return this.#extendFrom(current, byMs, options);
  }

  /**
   * Changes the lease's times or transfers it with UpdateLease; see `client.updateLease`. Unlike
   * {@link LeaseHandle.extend}, a new `duration` here replaces the old one and may shorten the lease.
   */
  async update(changes: LeaseChanges, options?: CallOptions): Promise<Lease> {
    const lease = await this.#context.rpc.updateLease(this.name, changes, options);
    this.#setLease(lease);
    return lease;
  }

  /**
   * Releases the lease. It succeeds as well when the lease was released before or has ended.
   * Calls while a release runs share it. It takes no signal, so an aborted caller cannot leave the
   * lease held, and it gives up after 30 s. Timers stop at once.
   *
   * @throws the last error when the controller could not be reached in time, or for a permanent
   *   failure such as a closed client.
   */
  release(): Promise<void> {
    if (this.#status === "released") return Promise.resolve();
    this.#releasing ??= this.#release().finally(() => {
      this.#releasing = undefined;
    });
    return this.#releasing;
  }

  /**
   * Releases the lease for `await using`. It never throws: a failed release goes to the logger and
   * to the `onReleaseError` callback.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.release();
    } catch (error) {
      this.#logError("releasing the lease failed; it stays held until it ends", error);
      try {
        this.#options.onReleaseError?.(error, this);
      } catch (callbackError) {
        this.#logError("the onReleaseError callback threw", callbackError);
      }
    }
  }

  /**
   * Calls `callback` once, `thresholdMs` milliseconds before the lease ends (at once when less time
   * is left). An extension moves the moment later. Nothing fires after the lease is released.
   *
   * @returns a function that cancels the callback.
   * @throws InvalidArgumentError for a threshold that is not a finite number >= 0.
   */
  onEnding(thresholdMs: number, callback: (event: LeaseEndingEvent) => void): () => void {
    if (typeof thresholdMs !== "number" || !Number.isFinite(thresholdMs) || thresholdMs < 0) {
      throw new InvalidArgumentError(`invalid thresholdMs ${String(thresholdMs)}: expected a finite number of milliseconds >= 0.`);
    }
    if (!this.held) return () => {};
    const subscription: EndingSubscription = { thresholdMs, callback, fired: false };
    this.#ending.push(subscription);
    this.#reschedule();
    return () => {
      this.#ending = this.#ending.filter((candidate) => candidate !== subscription);
    };
  }

  /**
   * Calls `callback` once when the controller ends the lease: it expired, was released by another
   * process, was transferred to another client, or was deleted. The argument is the
   * {@link LeaseEndedError} that describes it. While a callback is registered the handle re-reads
   * the lease at the planned end and every `watchIntervalMs`. A release by this handle ends the
   * watch without calling it.
   *
   * @returns a function that cancels the callback.
   */
  onEnded(callback: (error: LeaseEndedError) => void): () => void {
    const ended = this.#endedError;
    if (ended !== undefined) {
      queueMicrotask(() => this.#notifyEnded(callback, ended));
      return () => {};
    }
    if (!this.held) return () => {};
    this.#ended.add(callback);
    this.#reschedule();
    return () => {
      this.#ended.delete(callback);
    };
  }

  /** Describes the handle for logs. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, exporter: this.exporter, endsAt: this.endsAt?.toISOString(), status: this.#status };
  }

  async #release(): Promise<void> {
    this.#status = "releasing";
    this.#stopTimers();
    try {
      await releaseLease(this.#context, this.name);
    } catch (error) {
      this.#status = "held";
      throw error;
    }
    this.#status = "released";
    this.#forget();
  }

  async #extendFrom(current: Lease, byMs: number, options?: CallOptions): Promise<Lease> {
    if (isLeaseEnded(current)) throw leaseEndedError(current, "before it could be extended");

    const changes: LeaseChanges = {};
    const durationMs = current.duration ? durationMessageToMs(current.duration) : undefined;
    const endTime = timestampToDate(current.endTime);
    // A lease with a fixed end time ends there, so that time moves. Its duration moves with it,
    // because the controller rejects a duration that disagrees with begin and end times.
    if (endTime !== undefined) changes.endTime = new Date(endTime.getTime() + byMs);
    if (durationMs !== undefined) changes.duration = durationMs + byMs;
    if (changes.endTime === undefined && changes.duration === undefined) {
      throw new JumpstarterError(
        `cannot extend lease "${this.name}": the controller reported neither a duration nor an end time; read it with refresh() and update it explicitly.`,
        { resource: this.name },
      );
    }
    return this.update(changes, options);
  }

  #setLease(lease: Lease): void {
    this.#lease = lease;
    if (this.#status !== "held") return;

    const owner = this.#context.clientName && formatResourceName(this.#context.namespace, "clients", this.#context.clientName);
    if (owner && lease.client && lease.client !== owner) {
      this.#markEnded(transferredError(this.name, lease));
    } else if (isLeaseEnded(lease)) {
      this.#markEnded(leaseEndedError(lease, "while it was held"));
    } else {
      this.#reschedule();
    }
  }

  #markEnded(error: LeaseEndedError): void {
    if (this.#status !== "held") return;
    this.#status = "ended";
    this.#endedError = error;
    this.#context.logger.info("the lease ended", { lease: this.name, reason: error.reason });
    const callbacks = [...this.#ended];
    this.#stopTimers();
    this.#forget();
    for (const callback of callbacks) this.#notifyEnded(callback, error);
  }

  #notifyEnded(callback: (error: LeaseEndedError) => void, error: LeaseEndedError): void {
    try {
      callback(error);
    } catch (callbackError) {
      this.#logError("an onEnded callback threw", callbackError);
    }
  }

  // Logs an error that the handle does not throw. An exception from the logger itself is dropped, so
  // that disposal and timers cannot throw because of it.
  #logError(message: string, error: unknown): void {
    try {
      this.#context.logger.error(message, { lease: this.name, error: describeError(error) });
    } catch {
      // Nothing is left to report it to.
    }
  }

  #forget(): void {
    this.#ending = [];
    this.#ended.clear();
    this.#autoExtend = undefined;
    this.#context.held.delete(this);
  }

  #stopTimers(): void {
    this.#timers.abort();
  }

  // Replaces every timer with ones computed from the current end of the lease, which an extension
  // or a refresh may have moved.
  #reschedule(): void {
    this.#stopTimers();
    if (this.#status !== "held") return;
    this.#timers = new AbortController();

    const endsAt = this.endsAt?.getTime();
    if (endsAt === undefined) return;
    const now = this.#context.clock.now();

    for (const subscription of this.#ending) {
      if (!subscription.fired) this.#after(endsAt - subscription.thresholdMs - now, () => this.#fireEnding(subscription));
    }
    const plan = this.#autoExtend;
    if (plan !== undefined && !plan.running) {
      this.#after(Math.max(endsAt - plan.beforeEndMs, plan.notBefore) - now, () => this.#autoExtendStep(plan));
    }
    if (this.#ended.size > 0) {
      const untilEnd = endsAt - now;
      this.#after(untilEnd > 0 ? Math.min(untilEnd, this.#watchIntervalMs) : PAST_END_RECHECK_MS, () => this.#watch());
    }
  }

  // Runs `task` after `ms` unless the timers are replaced or stopped, or the client closes first.
  #after(ms: number, task: () => void | Promise<void>): void {
    const signal = this.#timers.signal;
    this.#context.clock.sleep(Math.max(0, ms), { signal, unref: true }).then(
      async () => {
        if (signal.aborted || this.#context.closedSignal.aborted) return;
        try {
          await task();
        } catch (error) {
          this.#logError("a lease timer failed", error);
        }
      },
      () => {},
    );
  }

  #fireEnding(subscription: EndingSubscription): void {
    if (subscription.fired || !this.#ending.includes(subscription)) return;
    subscription.fired = true;
    const endsAt = this.endsAt ?? new Date(this.#context.clock.now());
    const event = { name: this.name, endsAt, remainingMs: Math.max(0, endsAt.getTime() - this.#context.clock.now()) };
    try {
      subscription.callback(event);
    } catch (error) {
      this.#logError("an onEnding callback threw", error);
    }
  }

  async #watch(): Promise<void> {
    try {
      await this.refresh();
    } catch (error) {
      if (error instanceof PermissionDeniedError) {
        this.#markEnded(transferredError(this.name, undefined, error));
      } else if (error instanceof NotFoundError) {
        this.#markEnded(
          new LeaseEndedError(`lease "${this.name}" no longer exists; it was deleted, for example with its exporter. Acquire a new lease.`, {
            resource: this.name,
            reason: "NotFound",
            cause: error,
          }),
        );
      } else {
        this.#context.logger.debug("re-reading the lease failed; the watch goes on", { lease: this.name, error: describeError(error) });
        this.#reschedule();
      }
    }
  }

  async #autoExtendStep(plan: AutoExtendPlan): Promise<void> {
    plan.running = true;
    try {
      const current = await this.refresh();
      if (this.#status !== "held" || this.#autoExtend !== plan) return;

      const begin = timestampToDate(current.effectiveBeginTime ?? current.beginTime)?.getTime();
      const end = leaseEndsAt(current)?.getTime();
      const headroomMs = begin === undefined || end === undefined ? 0 : begin + plan.maxTotalMs - end;
      if (headroomMs <= 0) {
        this.#context.logger.debug("automatic extension reached maxTotal and stops", { lease: this.name });
        this.#autoExtend = undefined;
        return;
      }
      await this.#extendFrom(current, Math.min(plan.byMs, headroomMs));
      this.#context.logger.debug("extended the lease automatically", { lease: this.name, endsAt: this.endsAt?.toISOString() });
    } catch (error) {
      if (this.#status !== "held") return;
      this.#context.logger.warn("automatic extension failed; trying again", {
        lease: this.name,
        error: describeError(error),
        retryInMs: AUTO_EXTEND_RETRY_MS,
      });
      plan.notBefore = this.#context.clock.now() + AUTO_EXTEND_RETRY_MS;
    } finally {
      plan.running = false;
    }
    this.#reschedule();
  }
}

function planAutoExtend(options: AutoExtendOptions): AutoExtendPlan {
  const { beforeEndMs } = options;
  if (typeof beforeEndMs !== "number" || !Number.isFinite(beforeEndMs) || beforeEndMs < 0) {
    throw new InvalidArgumentError(`invalid autoExtend.beforeEndMs ${String(beforeEndMs)}: expected a finite number of milliseconds >= 0.`);
  }
  return {
    byMs: parseDurationMs(options.by, "autoExtend.by"),
    beforeEndMs,
    maxTotalMs: parseDurationMs(options.maxTotal, "autoExtend.maxTotal"),
    notBefore: 0,
    running: false,
  };
}

/**
 * Validates handle options before a lease is created, so that a mistake there fails before any
 * RPC instead of after the lease is held.
 *
 * @throws InvalidArgumentError naming the option.
 */
export function validateLeaseHandleOptions(options: LeaseHandleOptions): void {
  if (options.autoExtend !== undefined) planAutoExtend(options.autoExtend);
  const interval = options.watchIntervalMs;
  if (interval !== undefined && (typeof interval !== "number" || !Number.isFinite(interval) || interval <= 0)) {
    throw new InvalidArgumentError(`invalid watchIntervalMs ${String(interval)}: expected a positive number of milliseconds.`);
  }
}

function transferredError(name: string, lease: Lease | undefined, cause?: unknown): LeaseEndedError {
  const to = lease?.client ? ` to "${lease.client}"` : "";
  return new LeaseEndedError(
    `lease "${name}" was transferred${to} and this client no longer holds it. Acquire a new lease.`,
    { resource: name, reason: "Transferred", lease, cause },
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
