import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CallRunner, type CallRunnerOptions } from "../src/call.js";
import { ClientClosedError, DeadlineExceededError, InvalidArgumentError, NotFoundError, UnavailableError } from "../src/errors.js";
import type { Logger } from "../src/logger.js";
import { DEFAULT_RETRY_POLICY, backoffDelayMs, resolveRetryPolicy, sleepUnlessAborted } from "../src/retry.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { authHeaders, connectRaw, type RawClient } from "./helpers/raw-client.js";

const UNAVAILABLE = { code: Code.Unavailable, message: "controller restarting" };
const EXPORTER = "namespaces/lab/exporters/rpi4-01";

describe("retry", () => {
  describe("backoffDelayMs", () => {
    it.each([
      [1, 50],
      [2, 100],
      [3, 200],
      [4, 400],
      [5, 800],
      [6, 1600],
      [7, 2500],
      [8, 2500],
    ])("halves the bound of retry %i to %i ms", (retry, expected) => {
      expect(backoffDelayMs(DEFAULT_RETRY_POLICY, retry, () => 0.5)).toBe(expected);
    });

    it("stays below the cap", () => {
      expect(backoffDelayMs(DEFAULT_RETRY_POLICY, 30, () => 0.999_999)).toBe(4999);
    });

    it("can wait nothing", () => {
      expect(backoffDelayMs(DEFAULT_RETRY_POLICY, 3, () => 0)).toBe(0);
    });
  });

  describe("resolveRetryPolicy", () => {
    it("defaults to 8 attempts from 100 ms up to 5 s", () => {
      expect(resolveRetryPolicy(undefined)).toEqual({ maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 5000 });
    });

    it("turns retries off with false", () => {
      expect(resolveRetryPolicy(false).maxAttempts).toBe(1);
    });

    it("fills a call's fields from the client's", () => {
      const client = resolveRetryPolicy({ baseDelayMs: 10, maxDelayMs: 40 });
      expect(resolveRetryPolicy({ maxAttempts: 3 }, client)).toEqual({ maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 40 });
    });

    it.each([
      [{ maxAttempts: 0 }, /invalid retry.maxAttempts 0/],
      [{ maxAttempts: 2.5 }, /invalid retry.maxAttempts 2.5/],
      [{ baseDelayMs: -1 }, /invalid retry.baseDelayMs -1/],
      [{ maxDelayMs: Number.POSITIVE_INFINITY }, /invalid retry.maxDelayMs Infinity/],
      [true, /invalid retry true/],
    ])("rejects %j", (setting, message) => {
      expect(() => resolveRetryPolicy(setting as never)).toThrow(InvalidArgumentError);
      expect(() => resolveRetryPolicy(setting as never)).toThrow(message);
    });
  });

  describe("sleepUnlessAborted", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("resolves after the delay", async () => {
      vi.useFakeTimers();
      let done = false;
      const sleeping = sleepUnlessAborted(500, new AbortController().signal).then(() => (done = true));
      await vi.advanceTimersByTimeAsync(499);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await sleeping;
      expect(done).toBe(true);
    });

    it("rejects with the reason and clears its timer", async () => {
      vi.useFakeTimers();
      const controller = new AbortController();
      const reason = new Error("stop");
      const sleeping = sleepUnlessAborted(60_000, controller.signal);
      expect(vi.getTimerCount()).toBe(1);
      controller.abort(reason);
      await expect(sleeping).rejects.toBe(reason);
      expect(vi.getTimerCount()).toBe(0);
    });

    it("rejects at once when already aborted", async () => {
      const reason = new Error("already");
      await expect(sleepUnlessAborted(10, AbortSignal.abort(reason))).rejects.toBe(reason);
    });
  });
});

describe("CallRunner", () => {
  let mock: MockController;
  let raw: RawClient;
  let delays: number[];
  let clockMs: number;
  let warnings: Array<{ message: string; fields: Record<string, unknown> | undefined }>;

  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message, fields) => warnings.push({ message, fields }),
    error: () => {},
  };

  // A runner whose clock moves only while it sleeps, so that each delay and deadline is exact.
  function newRunner(options: CallRunnerOptions = {}): CallRunner {
    return new CallRunner({
      logger,
      random: () => 0.5,
      now: () => clockMs,
      sleep: async (ms) => {
        delays.push(ms);
        clockMs += ms;
      },
      ...options,
    });
  }

  // A runner with the real sleep and a 5 s wait, which runs `onWait` once the wait has started.
  function realSleepRunner(onWait: () => void): CallRunner {
    return new CallRunner({
      logger: { ...logger, warn: () => queueMicrotask(onWait) },
      random: () => 0.5,
      retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 },
    });
  }

  function getExporter(runner: CallRunner, options: Parameters<CallRunner["run"]>[1] = {}, idempotent = true): Promise<unknown> {
    return runner.run({ operation: "get exporter", resource: EXPORTER, idempotent }, options, (call) =>
      raw.client.getExporter({ name: EXPORTER }, call),
    );
  }

  beforeEach(async () => {
    mock = await startMockController({ namespace: "lab", exporters: [{ name: "rpi4-01", labels: {} }] });
    raw = connectRaw(mock.endpoint, { headers: authHeaders(mock.token, "lab") });
    delays = [];
    clockMs = 0;
    warnings = [];
  });

  afterEach(async () => {
    raw.close();
    await mock.close();
  });

  describe("run", () => {
    it("retries UNAVAILABLE until success", async () => {
      mock.failNext("GetExporter", 3, UNAVAILABLE);
      await expect(getExporter(newRunner())).resolves.toMatchObject({ name: EXPORTER });
      expect(mock.callsTo("GetExporter")).toHaveLength(4);
      expect(delays).toEqual([50, 100, 200]);
    });

    it("draws each delay from the doubling bound", async () => {
      const draws = [0.25, 0.75, 0.1];
      mock.failNext("GetExporter", 3, UNAVAILABLE);
      await getExporter(newRunner({ random: () => draws.shift()! }));
      expect(delays).toEqual([25, 150, 40]);
    });

    it("stops after maxAttempts", async () => {
      mock.failNext("GetExporter", 5, UNAVAILABLE);
      const error = await getExporter(newRunner({ retry: { maxAttempts: 3 } })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain("Gave up after 3 attempts.");
      expect(mock.callsTo("GetExporter")).toHaveLength(3);
      expect(delays).toEqual([50, 100]);
    });

    it("stops when the next wait passes the deadline", async () => {
      mock.failNext("GetExporter", 8, UNAVAILABLE);
      const runner = newRunner({ random: () => 0.999 });
      const error = await getExporter(runner, { timeoutMs: 1000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain("Gave up after 4 attempts: the next retry would start after the 1000 ms deadline.");
      // 99 + 199 + 399 ms leave 303 ms, less than the next wait of 799 ms.
      expect(delays).toEqual([99, 199, 399]);
      expect(mock.callsTo("GetExporter").map((call) => call.headers["grpc-timeout"])).toEqual(["1000m", "901m", "702m", "303m"]);
    });

    it("fails at once when no wait fits", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      const runner = newRunner({ random: () => 0.999, retry: { baseDelayMs: 1000 } });
      const error = await getExporter(runner, { timeoutMs: 500 }).catch((e: unknown) => e);
      expect((error as Error).message).toContain("Gave up after 1 attempt: the next retry would start after the 500 ms deadline.");
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
      expect(delays).toEqual([]);
    });

    it("sends a call that is not idempotent once", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      await expect(getExporter(newRunner(), {}, false)).rejects.toBeInstanceOf(UnavailableError);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
      expect(delays).toEqual([]);
    });

    it("sends once with retry false", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      await expect(getExporter(newRunner(), { retry: false })).rejects.toBeInstanceOf(UnavailableError);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("takes per-call settings over the client's", async () => {
      mock.failNext("GetExporter", 2, UNAVAILABLE);
      const runner = newRunner({ retry: false });
      await expect(getExporter(runner, { retry: { maxAttempts: 3, baseDelayMs: 10 } })).resolves.toBeDefined();
      expect(delays).toEqual([5, 10]);
    });

    it.each([
      [Code.DeadlineExceeded, DeadlineExceededError],
      [Code.Unknown, NotFoundError],
    ])("never retries code %i", async (code, type) => {
      const message = code === Code.Unknown ? 'exporters.jumpstarter.dev "rpi4-01" not found' : "too slow";
      mock.failNext("GetExporter", 1, { code, message });
      await expect(getExporter(newRunner())).rejects.toBeInstanceOf(type);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("logs each retry without the token", async () => {
      mock.failNext("GetExporter", 2, { code: Code.Unavailable, message: `proxy saw Bearer ${mock.token}` });
      await getExporter(newRunner());
      expect(warnings.map((w) => w.fields)).toEqual([
        { operation: "get exporter", resource: EXPORTER, attempt: 1, maxAttempts: 8, delayMs: 50, code: "Unavailable" },
        { operation: "get exporter", resource: EXPORTER, attempt: 2, maxAttempts: 8, delayMs: 100, code: "Unavailable" },
      ]);
      expect(warnings[0]?.message).toBe(
        `retrying get exporter "${EXPORTER}" in 50 ms: attempt 1 of 8 failed: proxy saw Bearer [redacted]`,
      );
      expect(JSON.stringify(warnings)).not.toContain(mock.token);
    });

    it("recovers a retried attempt when told to", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      mock.failNext("GetExporter", 1, { code: Code.FailedPrecondition, message: "done before" });
      const runner = newRunner();
      const result = await runner.run(
        {
          operation: "get exporter",
          resource: EXPORTER,
          idempotent: true,
          recoverAfterRetry: (error) => (error.code === Code.FailedPrecondition ? Promise.resolve("recovered") : undefined),
        },
        {},
        async (call) => (await raw.client.getExporter({ name: EXPORTER }, call)).name,
      );
      expect(result).toBe("recovered");
    });

    it("leaves a first attempt's error alone", async () => {
      mock.failNext("GetExporter", 1, { code: Code.FailedPrecondition, message: "done before" });
      const recoverAfterRetry = vi.fn(() => Promise.resolve(undefined));
      const runner = newRunner();
      await expect(
        runner.run({ operation: "get exporter", resource: EXPORTER, idempotent: true, recoverAfterRetry }, {}, (call) =>
          raw.client.getExporter({ name: EXPORTER }, call),
        ),
      ).rejects.toMatchObject({ code: Code.FailedPrecondition });
      expect(recoverAfterRetry).not.toHaveBeenCalled();
    });

    it("rejects with the caller's reason during a wait", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      const controller = new AbortController();
      const reason = new Error("stop now");
      const runner = realSleepRunner(() => controller.abort(reason));
      await expect(getExporter(runner, { signal: controller.signal })).rejects.toBe(reason);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("rejects with ClientClosedError when closed during a wait", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      const runner: CallRunner = realSleepRunner(() => runner.close());
      await expect(getExporter(runner)).rejects.toBeInstanceOf(ClientClosedError);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });
  });
});
