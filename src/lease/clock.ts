import { setTimeout as delay } from "node:timers/promises";

/** Options of {@link LeaseClock.sleep}. */
export interface SleepOptions {
  /** Ends the sleep early; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Let the process exit while the sleep is pending, as a timer that `unref()` was called on. Default `false`. */
  unref?: boolean;
}

/**
 * Time source of lease waits and lease timers. Tests pass their own to control time; the default
 * is {@link systemClock}.
 */
export interface LeaseClock {
  /** Current time in milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms` milliseconds, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, options?: SleepOptions): Promise<void>;
  /** Returns a random number in [0, 1), for jitter. */
  random(): number;
}

// Node.js fires timers longer than 2^31 - 1 ms at once, so longer sleeps are split.
const MAX_TIMER_MS = 2_147_483_647;

/** The real clock: `Date.now()`, Node.js timers and `Math.random()`. */
export const systemClock: LeaseClock = {
  now: () => Date.now(),
  random: () => Math.random(),
  async sleep(ms, options = {}) {
    let remaining = Math.max(0, ms);
    do {
      const step = Math.min(remaining, MAX_TIMER_MS);
      try {
        await delay(step, undefined, { signal: options.signal, ref: options.unref !== true });
      } catch (error) {
        // Node.js rejects with its own AbortError; callers expect the signal's reason.
        if (options.signal?.aborted) throw options.signal.reason;
        throw error;
      }
      remaining -= step;
    } while (remaining > 0);
  },
};
