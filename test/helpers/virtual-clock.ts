import type { LeaseClock, SleepOptions } from "../../src/index.js";

interface PendingSleep {
  at: number;
  resolve: () => void;
}

/** Options of {@link VirtualClock}. */
export interface VirtualClockOptions {
  /** Start time in ms since the epoch. Default: 2030-01-01T00:00:00Z. */
  startMs?: number;
  /**
   * When true, every sleep moves the clock forward by its length at once, so waits run without
   * real delays. When false, sleeps wait for {@link VirtualClock.advance}. Default false.
   */
  autoAdvance?: boolean;
  /** Value that `random()` returns. Default 0.5. */
  random?: number;
}

/** A {@link LeaseClock} whose time moves only when a sleep or the test moves it. */
export class VirtualClock implements LeaseClock {
  /** Length of every sleep requested so far, in ms, oldest first. */
  readonly sleeps: number[] = [];
  randomValue: number;
  readonly #autoAdvance: boolean;
  #nowMs: number;
  #pending: PendingSleep[] = [];

  constructor(options: VirtualClockOptions = {}) {
    this.#nowMs = options.startMs ?? Date.parse("2030-01-01T00:00:00Z");
    this.#autoAdvance = options.autoAdvance ?? false;
    this.randomValue = options.random ?? 0.5;
  }

  now(): number {
    return this.#nowMs;
  }

  /** The clock as a `Date` source, for the mock controller's `now` option. */
  readonly date = (): Date => new Date(this.#nowMs);

  random(): number {
    return this.randomValue;
  }

  sleep(ms: number, options: SleepOptions = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);

    if (this.#autoAdvance) {
      this.#nowMs += ms;
      return new Promise<void>((resolve, reject) => {
        setImmediate(() => (signal?.aborted ? reject(signal.reason) : resolve()));
      });
    }

    return new Promise<void>((resolve, reject) => {
      const pending: PendingSleep = {
        at: this.#nowMs + ms,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#pending = this.#pending.filter((candidate) => candidate !== pending);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.push(pending);
    });
  }

  /** Number of sleeps that wait for {@link advance}. */
  get pendingSleeps(): number {
    return this.#pending.length;
  }

  /**
   * Moves the clock forward by `ms`, waking each sleep that falls due on the way, in time order,
   * and letting the code it wakes run its synchronous part and queued callbacks.
   */
  async advance(ms: number): Promise<void> {
    const target = this.#nowMs + ms;
    for (;;) {
      const due = this.#pending.filter((sleep) => sleep.at <= target).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.#pending = this.#pending.filter((sleep) => sleep !== due);
      this.#nowMs = Math.max(this.#nowMs, due.at);
      due.resolve();
      await flush();
    }
    this.#nowMs = target;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}
