import { Code, ConnectError, createContextValues, type CallOptions as ConnectCallOptions, type ContextValues } from "@connectrpc/connect";
import { ClientClosedError, InvalidArgumentError, isJumpstarterError, toJumpstarterError, type JumpstarterError } from "./errors.js";
import { silentLogger, type Logger } from "./logger.js";
import {
  backoffDelayMs,
  isRetryableFailure,
  resolveRetryPolicy,
  sleepUnlessAborted,
  type RetryPolicy,
  type RetrySetting,
  type RetrySleep,
} from "./retry.js";

/** Options that every client method accepts as its last argument. */
export interface CallOptions {
  /** Aborts the call; the returned promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Deadline of the call in milliseconds, sent to the controller as `grpc-timeout`. Default: the client's `timeoutMs` (30,000). */
  timeoutMs?: number;
  /** Extra request headers. They cannot replace the authentication headers that the client sets. */
  headers?: ConnectCallOptions["headers"];
  /**
   * Retry settings of this call, filled in from the client's; `false` sends it once. Only calls that
   * are safe to repeat are retried, and every attempt and wait fits within `timeoutMs`.
   */
  retry?: RetrySetting;
}

/** Default deadline of one call, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Description of one call for error messages and logs, and whether it may be sent again. */
export interface CallContext<T = unknown> {
  /** The operation in words, such as `get lease`. */
  operation: string;
  /** The resource name involved, when there is one. */
  resource?: string;
  /**
   * Whether sending the RPC twice has the same effect as sending it once. Only such calls are
   * retried after a transient failure. Default `false`.
   */
  idempotent?: boolean;
  /**
   * Turns the error of a retried attempt into a result when the error shows that an earlier
   * attempt succeeded but its response was lost, such as "already released" for DeleteLease.
   * Returns `undefined` for any other error.
   */
  recoverAfterRetry?: (error: JumpstarterError, callOptions: ConnectCallOptions) => Promise<T> | undefined;
}

/** Options of {@link CallRunner}. */
export interface CallRunnerOptions {
  /** Default deadline of a call in milliseconds. Default 30,000. */
  timeoutMs?: number;
  /** Expiry of the token in use, for the token-expired message. */
  tokenExpiresAt?: () => Date | undefined;
  /** Default retry settings. Default: 8 attempts, backoff from 100 ms doubling up to 5,000 ms. */
  retry?: RetrySetting;
  /** Destination of the retry log records. Default: silent. */
  logger?: Logger;
  /** Source of backoff jitter in [0, 1). Default `Math.random`, which tests replace to pin each delay. */
  random?: () => number;
  /** Wait between attempts. Default: a timer that the call's signal cancels. */
  sleep?: RetrySleep;
  /** Monotonic clock in milliseconds for the deadline. Default `performance.now`. */
  now?: () => number;
  /**
   * Decides, after a failure, whether the call is sent once more because a token provider returned
   * a new token. It gets the failed attempt's context values, in which interceptors recorded what
   * they sent. Default: never.
   */
  retryAfterAuthFailure?: (error: JumpstarterError, context: ContextValues) => Promise<boolean>;
}

/**
 * Checks a timeout option.
 *
 * @throws InvalidArgumentError for a value that is not a positive finite number of milliseconds.
 */
export function validateTimeoutMs(value: number | undefined, what = "timeoutMs"): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`invalid ${what} ${String(value)}: expected a positive number of milliseconds.`);
  }
  return value;
}

/**
 * Runs the RPCs of one client: it applies the deadline, joins the caller's signal with the
 * client's close signal, retries idempotent calls after transient failures, and turns every
 * failure into a `JumpstarterError`.
 */
export class CallRunner {
  readonly #defaultTimeoutMs: number;
  readonly #closed = new AbortController();
  readonly #describeTokenExpiry: () => Date | undefined;
  readonly #retryPolicy: RetryPolicy;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #sleep: RetrySleep;
  readonly #now: () => number;
  readonly #retryAfterAuthFailure: (error: JumpstarterError, context: ContextValues) => Promise<boolean>;

  constructor(options: CallRunnerOptions) {
    this.#defaultTimeoutMs = validateTimeoutMs(options.timeoutMs) ?? DEFAULT_TIMEOUT_MS;
    this.#describeTokenExpiry = options.tokenExpiresAt ?? (() => undefined);
    this.#retryPolicy = resolveRetryPolicy(options.retry);
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleepUnlessAborted;
    this.#now = options.now ?? (() => performance.now());
    this.#retryAfterAuthFailure = options.retryAfterAuthFailure ?? (async () => false);
  }

  /** Aborted when the client closes; waits and timers listen to it. */
  get closedSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /** The default deadline of a call in milliseconds. */
  get defaultTimeoutMs(): number {
    return this.#defaultTimeoutMs;
  }

  /** Marks the client closed and aborts every call in flight with `ClientClosedError`. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new ClientClosedError("the client was closed while the call was in flight; create a new client."));
  }

  /**
   * Throws `ClientClosedError` when the client is closed, so that no RPC leaves a closed client.
   */
  assertOpen(context: CallContext): void {
    if (this.#closed.signal.aborted) {
      throw new ClientClosedError(
        `cannot ${context.operation}${context.resource ? ` "${context.resource}"` : ""}: the client is closed; create a new client.`,
        { resource: context.resource },
      );
    }
  }

  /**
   * Runs one RPC. `rpc` receives the connect call options to pass through, with the time left of
   * the call's deadline as `timeoutMs`. Failures are rethrown as `JumpstarterError`, except an
   * abort by the caller, which rejects with the signal's reason.
   *
   * An idempotent call that fails with UNAVAILABLE or a broken connection is sent again after a
   * backoff. It stops when an attempt succeeds or fails otherwise, when the attempts run out, or
   * when the next wait would pass the deadline, and then throws the last failure.
   */
  async run<T>(context: CallContext<T>, options: CallOptions | undefined, rpc: (callOptions: ConnectCallOptions) => Promise<T>): Promise<T> {
    this.assertOpen(context);
    const timeoutMs = validateTimeoutMs(options?.timeoutMs) ?? this.#defaultTimeoutMs;
    const policy = resolveRetryPolicy(options?.retry, this.#retryPolicy);
    const maxAttempts = context.idempotent === true ? policy.maxAttempts : 1;
    const callerSignal = options?.signal;
    callerSignal?.throwIfAborted();

    // A signal per call, so that the listeners of many concurrent calls do not pile up on the
    // close signal, which Node.js warns about beyond ten.
    const signal = AbortSignal.any(callerSignal ? [callerSignal, this.#closed.signal] : [this.#closed.signal]);
    const deadline = this.#now() + timeoutMs;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      const contextValues = createContextValues();
      const callOptions = { signal, timeoutMs: Math.max(0, Math.ceil(deadline - this.#now())), headers: options?.headers, contextValues };
      let failure: JumpstarterError;
      try {
        return await rpc(callOptions);
      } catch (error) {
        failure = this.#toFailure(error, context, callerSignal);
      }

      // Sent once more, at most, and only when the token provider returned a different token. This
      // extra attempt does not count against the retry budget.
      if (!authRetried && (await this.#retryAfterAuthFailure(failure, contextValues))) {
        authRetried = true;
        attempt--;
        continue;
      }

      const recovered = attempt > 1 ? context.recoverAfterRetry?.(failure, callOptions) : undefined;
      if (recovered) {
        try {
          return await recovered;
        } catch (error) {
          throw this.#toFailure(error, context, callerSignal);
        }
      }

      const delayMs = this.#retryDelayMs(failure, attempt, { ...policy, maxAttempts }, deadline, timeoutMs);
      if (delayMs === undefined) throw failure;
      this.#logRetry(context, failure, attempt, maxAttempts, delayMs);
      // The wait rejects with the signal's reason, so abort and close behave as during an RPC.
      await this.#sleep(delayMs, signal);
    }
  }

  // Returns the wait before the next attempt, or undefined when `failure` is final. A transient
  // failure that ends the retries gets the reason in its message.
  #retryDelayMs(failure: JumpstarterError, attempt: number, policy: RetryPolicy, deadline: number, timeoutMs: number): number | undefined {
    if (!isRetryableFailure(failure)) return undefined;
    if (attempt >= policy.maxAttempts) {
      if (attempt > 1) failure.message += ` Gave up after ${attempt} attempts.`;
      return undefined;
    }

    const delayMs = backoffDelayMs(policy, attempt, this.#random);
    if (delayMs >= deadline - this.#now()) {
      const attempts = attempt === 1 ? "1 attempt" : `${attempt} attempts`;
      failure.message += ` Gave up after ${attempts}: the next retry would start after the ${timeoutMs} ms deadline.`;
      return undefined;
    }
    return delayMs;
  }

  // Converts the error of one attempt. An abort by the caller or by close() is no failure of the
  // call, so its reason is thrown at once instead.
  #toFailure(error: unknown, context: CallContext<unknown>, callerSignal: AbortSignal | undefined): JumpstarterError {
    if (callerSignal?.aborted) throw callerSignal.reason;
    if (this.#closed.signal.aborted) throw this.#closed.signal.reason;

    const errorContext = { operation: context.operation, resource: context.resource, tokenExpiresAt: this.#describeTokenExpiry() };
    const connectError = ConnectError.from(error);
    if (connectError.code === Code.Canceled && !isJumpstarterError(error)) {
      // This call's own aborts were handled above, so the server or a proxy cancelled the stream,
      // as a controller does when it shuts down: the same as a lost connection.
      return toJumpstarterError(new ConnectError(connectError.rawMessage, Code.Unavailable, undefined, undefined, connectError), errorContext);
    }
    return toJumpstarterError(error, errorContext);
  }

  #logRetry(context: CallContext<unknown>, failure: JumpstarterError, attempt: number, maxAttempts: number, delayMs: number): void {
    const target = context.resource ? ` "${context.resource}"` : "";
    const reason = failure.rawMessage || Code[failure.code];
    this.#logger.warn(`retrying ${context.operation}${target} in ${delayMs} ms: attempt ${attempt} of ${maxAttempts} failed: ${reason}`, {
      operation: context.operation,
      resource: context.resource,
      attempt,
      maxAttempts,
      delayMs,
      code: Code[failure.code],
    });
  }
}
