import { Code, ConnectError } from "@connectrpc/connect";
import type { MockMethod } from "./mock-calls.js";

/** Error that {@link MockController.failNext} makes a call return. */
export interface MockFailure {
  /** gRPC status code that the call ends with. */
  code: Code;
  /** Error message that the call ends with, as the controller would send it. */
  message: string;
}

/** Length of a stall from {@link MockController.stallNext}. */
export interface MockStall {
  /** Time in ms that the call waits before it is handled normally. When undefined, it waits until it is cancelled or the controller closes. */
  ms?: number;
}

interface PendingSleep {
  cancel(error: ConnectError): void;
}

/**
 * Injected faults per method: queued failures, queued stalls and a fixed latency.
 *
 * For each call, {@link apply} first waits the method's latency, then takes one queued stall,
 * then one queued failure. Every wait ends early when the call's signal aborts or
 * {@link close} runs, so no timer outlives the controller.
 */
export class MockFaults {
  private readonly failures = new Map<MockMethod, MockFailure[]>();
  private readonly lostResponses = new Map<MockMethod, MockFailure[]>();
  private readonly stalls = new Map<MockMethod, MockStall[]>();
  private readonly latencies = new Map<MockMethod, number>();
  private readonly sleeps = new Set<PendingSleep>();
  private closed = false;

  /** Makes the next `count` calls of `method` fail with `failure`, after any queued before. */
  failNext(method: MockMethod, count: number, failure: MockFailure): void {
    enqueue(this.failures, method, count, failure);
  }

  /**
   * Makes the next `count` calls of `method` take effect and then fail with `failure` instead of
   * returning their response, as when the response is lost on its way back.
   */
  loseResponseNext(method: MockMethod, count: number, failure: MockFailure): void {
    enqueue(this.lostResponses, method, count, failure);
  }

  /** Makes the next `count` calls of `method` wait before they are handled, after any queued before. */
  stallNext(method: MockMethod, count: number, stall: MockStall = {}): void {
    enqueue(this.stalls, method, count, stall);
  }

  /** Adds `ms` of latency to every later call of `method`, or removes it when `ms` is 0. */
  delayAll(method: MockMethod, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`invalid latency ${ms} ms for ${method}: expected a finite number >= 0`);
    }
    if (ms === 0) this.latencies.delete(method);
    else this.latencies.set(method, ms);
  }

  /** Removes every queued failure, queued stall and latency. Calls already waiting keep waiting. */
  clear(): void {
    this.failures.clear();
    this.lostResponses.clear();
    this.stalls.clear();
    this.latencies.clear();
  }

  /**
   * Applies the faults for one call of `method`.
   *
   * @throws ConnectError with the queued failure, or when the call is cancelled or the controller
   *   closes during a wait.
   */
  async apply(method: MockMethod, signal: AbortSignal): Promise<void> {
    const latency = this.latencies.get(method);
    if (latency !== undefined) await this.sleep(latency, signal);

    const stall = this.stalls.get(method)?.shift();
    if (stall !== undefined) await this.sleep(stall.ms, signal);

    const failure = this.failures.get(method)?.shift();
    if (failure !== undefined) throw new ConnectError(failure.message, failure.code);
  }

  /**
   * Applies a queued lost response to a call of `method` that has taken effect.
   *
   * @throws ConnectError with the queued failure.
   */
  applyAfter(method: MockMethod): void {
    const failure = this.lostResponses.get(method)?.shift();
    if (failure !== undefined) throw new ConnectError(failure.message, failure.code);
  }

  /** Ends every wait in progress with UNAVAILABLE and makes later waits fail at once. */
  close(): void {
    this.closed = true;
    for (const sleep of [...this.sleeps]) {
      sleep.cancel(new ConnectError("mock controller closed", Code.Unavailable));
    }
  }

  /** Waits `ms` (forever when undefined) unless `signal` aborts or the controller closes first. */
  private sleep(ms: number | undefined, signal: AbortSignal): Promise<void> {
    if (this.closed) {
      return Promise.reject(new ConnectError("mock controller closed", Code.Unavailable));
    }
    if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));

    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (error?: ConnectError): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.sleeps.delete(pending);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => finish(ConnectError.from(signal.reason, Code.Canceled));
      const pending: PendingSleep = { cancel: finish };

      this.sleeps.add(pending);
      signal.addEventListener("abort", onAbort, { once: true });
      if (ms !== undefined) {
        timer = setTimeout(() => finish(), ms);
        timer.unref();
      }
    });
  }
}

function enqueue<T>(queues: Map<MockMethod, T[]>, method: MockMethod, count: number, item: T): void {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`invalid count ${count} for ${method}: expected an integer >= 1`);
  }
  const queue = queues.get(method) ?? [];
  for (let i = 0; i < count; i++) queue.push(item);
  queues.set(method, queue);
}
