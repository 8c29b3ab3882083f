/**
 * A wall-clock limit for one measurement loop. Every loop in the benchmarks has a bounded count,
 * and checks a budget too, so that a stuck server ends the run with an error instead of hanging.
 */
export class TimeBudget {
  readonly #description: string;
  readonly #limitMs: number;
  readonly #deadline: number;

  /** @param description names the loop in the error, such as `400 calls through raw connect`. */
  constructor(description: string, limitMs: number) {
    this.#description = description;
    this.#limitMs = limitMs;
    this.#deadline = performance.now() + limitMs;
  }

  /** @throws Error when the budget is spent. */
  check(): void {
    if (performance.now() > this.#deadline) {
      throw new Error(`${this.#description} took longer than ${this.#limitMs} ms; the mock controller may be stuck, or the machine overloaded.`);
    }
  }
}

/** Runs `gc()` when the process was started with `--expose-gc`, and returns whether it ran. */
export function collectGarbage(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  return true;
}
