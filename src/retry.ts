import { DeadlineExceededError, InvalidArgumentError, type JumpstarterError } from "./errors.js";

/**
 * Retry settings for failed calls. Each field falls back to the client's setting, then to the
 * default. Only calls that are safe to send twice are retried, and only after a transient failure
 * (UNAVAILABLE, or a refused, reset or closed connection).
 */
export interface RetryOptions {
  /** Attempts in total, the first one included; 1 turns retries off. Default 8. */
  maxAttempts?: number;
  /** Upper bound of the first backoff delay in milliseconds; the bound doubles after each retry. Default 100. */
  baseDelayMs?: number;
  /** Cap of the backoff bound in milliseconds. Default 5,000. */
  maxDelayMs?: number;
}

/** The `retry` option of a client or a call: settings, or `false` to send each call once. */
export type RetrySetting = RetryOptions | false;

/** A retry policy with every field set. */
export type RetryPolicy = Required<RetryOptions>;

/** The policy used when neither the client nor the call sets one. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 5_000 });

/** Policy that sends each call once, for `retry: false`. */
const NO_RETRY: Readonly<RetryPolicy> = Object.freeze({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1 });

/**
 * Checks a `retry` option and fills it in from `base`, so that a call's `{ maxAttempts: 3 }` keeps
 * the client's delays.
 *
 * @throws InvalidArgumentError for a setting that is neither `false` nor an object, a
 *   `maxAttempts` that is not a whole number of at least 1, or a negative or non-finite delay.
 */
export function resolveRetryPolicy(setting: RetrySetting | undefined, base: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY): RetryPolicy {
  if (setting === undefined) return { ...base };
  if (setting === false) return { ...NO_RETRY };
  if (setting === null || typeof setting !== "object") {
    throw new InvalidArgumentError(
      `invalid retry ${String(setting)}: pass false to turn retries off, or an object such as { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 5000 }.`,
    );
  }

  const maxAttempts = setting.maxAttempts ?? base.maxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new InvalidArgumentError(`invalid retry.maxAttempts ${String(maxAttempts)}: expected a whole number of at least 1 (1 turns retries off).`);
  }
  return {
    maxAttempts,
    baseDelayMs: validateDelayMs(setting.baseDelayMs ?? base.baseDelayMs, "retry.baseDelayMs"),
    maxDelayMs: validateDelayMs(setting.maxDelayMs ?? base.maxDelayMs, "retry.maxDelayMs"),
  };
}

function validateDelayMs(value: number, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`invalid ${what} ${String(value)}: expected a finite number of milliseconds, 0 or more.`);
  }
  return value;
}

/**
 * Computes the wait before retry number `retry` (1 for the wait after the first attempt) with
 * full jitter: a whole number of milliseconds drawn uniformly from [0, bound), where the bound is
 * `baseDelayMs * 2^(retry - 1)` capped at `maxDelayMs`. Jitter spreads the retries of many
 * clients after a controller restart instead of sending them in waves.
 *
 * @param random returns a number in [0, 1), as `Math.random` does.
 */
export function backoffDelayMs(policy: Readonly<RetryPolicy>, retry: number, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * bound);
}

/**
 * Tells whether a failed attempt may be sent again: the error must be transient (UNAVAILABLE or a
 * broken connection, which `retryable` marks). A call that ran out of time is never retried,
 * because its deadline covers every attempt.
 */
export function isRetryableFailure(error: JumpstarterError): boolean {
  return error.retryable && !(error instanceof DeadlineExceededError);
}

/** Waits between attempts; rejects with the signal's reason as soon as `signal` aborts. */
export type RetrySleep = (ms: number, signal: AbortSignal) => Promise<void>;

/**
 * Waits `ms` milliseconds unless `signal` aborts first, in which case it rejects with the signal's
 * reason and clears its timer. The timer keeps the process alive, because a call is still waiting
 * for its result.
 */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
