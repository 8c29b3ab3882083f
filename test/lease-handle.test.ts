import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { UpdateLeaseRequest } from "../src/generated.js";
import {
  InvalidArgumentError,
  JumpstarterClient,
  LeaseEndedError,
  PermissionDeniedError,
  UnavailableError,
  isLeaseReady,
  type JumpstarterClientOptions,
  type LeaseHandle,
  type LeaseHandleOptions,
  type LeaseSpec,
  type Logger,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { VirtualClock } from "./helpers/virtual-clock.js";

const MINUTE = 60_000;
const T0 = Date.parse("2030-01-01T00:00:00Z");
const CLIENT = "ci-runner";

let mock: MockController;
let clock: VirtualClock;
let client: JumpstarterClient;

function newClient(overrides: Partial<JumpstarterClientOptions> = {}): JumpstarterClient {
  return new JumpstarterClient({
    endpoint: mock.endpoint,
    namespace: mock.namespace,
    token: mock.token,
    clientName: CLIENT,
    clock,
    ...overrides,
  });
}

// Creates a lease on rpi4-01, lets the mock make it Ready, and attaches to it, so that no wait
// needs the virtual clock to move.
async function holdLease(
  spec: LeaseSpec = { exporterName: "rpi4-01", duration: "10m" },
  options: LeaseHandleOptions = {},
  on: JumpstarterClient = client,
): Promise<LeaseHandle> {
  const created = await on.createLease(spec);
  await vi.waitFor(() => expect(isLeaseReady(mock.leases().find((lease) => lease.name === created.name)!)).toBe(true));
  return on.attachLease(created.name, options);
}

function updateRequests(): UpdateLeaseRequest[] {
  return mock.callsTo("UpdateLease").map((call) => call.request as UpdateLeaseRequest);
}

type LogMethod = Logger["error"];

function spyLogger() {
  return { debug: vi.fn<LogMethod>(), info: vi.fn<LogMethod>(), warn: vi.fn<LogMethod>(), error: vi.fn<LogMethod>() };
}

beforeEach(async () => {
  clock = new VirtualClock({ startMs: T0 });
  mock = await startMockController({
    namespace: "lab",
    clientName: CLIENT,
    exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }],
    now: clock.date,
  });
  client = newClient();
});

afterEach(async () => {
  await client.close();
  await mock.close();
});

describe("LeaseHandle", () => {
  describe("extend", () => {
    it("moves the end later", async () => {
      const lease = await holdLease();
      expect(lease.endsAt?.getTime()).toBe(T0 + 10 * MINUTE);

      await lease.extend("5m");

      expect(lease.endsAt?.getTime()).toBe(T0 + 15 * MINUTE);
      expect(updateRequests()[0]?.updateMask?.paths).toEqual(["duration"]);
    });

    it("never shortens a lease extended elsewhere", async () => {
      const lease = await holdLease();
      await client.updateLease(lease.name, { duration: "1h" });

      await lease.extend(5 * MINUTE);

      expect(lease.endsAt?.getTime()).toBe(T0 + 65 * MINUTE);
    });

    it("moves a fixed end time", async () => {
      const lease = await holdLease({ exporterName: "rpi4-01", beginTime: new Date(T0), endTime: new Date(T0 + 10 * MINUTE) });

      await lease.extend("5m");

      expect(lease.endsAt?.getTime()).toBe(T0 + 15 * MINUTE);
      expect(updateRequests()[0]?.updateMask?.paths).toEqual(["duration", "end_time"]);
    });

    it("rejects a zero extension", async () => {
      const lease = await holdLease();

      await expect(lease.extend(0)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(updateRequests()).toHaveLength(0);
    });

    it("rejects an ended lease", async () => {
      const lease = await holdLease();
      mock.endLease(lease.name);

      await expect(lease.extend("5m")).rejects.toBeInstanceOf(LeaseEndedError);
      expect(updateRequests()).toHaveLength(0);
      expect(lease.held).toBe(false);
    });
  });

  describe("update", () => {
    it("may shorten the lease", async () => {
      const lease = await holdLease();

      await lease.update({ duration: "5m" });

      expect(lease.endsAt?.getTime()).toBe(T0 + 5 * MINUTE);
    });
  });

  describe("release", () => {
    it("sends one DeleteLease for repeated calls", async () => {
      const lease = await holdLease();

      await Promise.all([lease.release(), lease.release()]);
      await lease.release();

      expect(mock.callsTo("DeleteLease")).toHaveLength(1);
      expect(mock.activeLeases()).toEqual([]);
      expect(lease.held).toBe(false);
    });

    it("succeeds after a release elsewhere", async () => {
      const lease = await holdLease();
      await client.deleteLease(lease.name);

      await lease.release();

      expect(mock.callsTo("DeleteLease")).toHaveLength(2);
    });

    it("succeeds on an expired lease", async () => {
      const lease = await holdLease();
      mock.endLease(lease.name);

      await expect(lease.release()).resolves.toBeUndefined();
    });

    it("retries UNAVAILABLE", async () => {
      const auto = new VirtualClock({ autoAdvance: true });
      const other = newClient({ clock: auto });
      const lease = await holdLease(undefined, {}, other);
      mock.failNext("DeleteLease", 2, { code: Code.Unavailable, message: "controller restarting" });

      await lease.release();

      expect(mock.callsTo("DeleteLease")).toHaveLength(3);
      expect(mock.activeLeases()).toEqual([]);
      await other.close();
    });

    it("gives up after 30 s", async () => {
      const auto = new VirtualClock({ autoAdvance: true });
      const other = newClient({ clock: auto });
      const lease = await holdLease(undefined, {}, other);
      mock.failNext("DeleteLease", 100, { code: Code.Unavailable, message: "controller restarting" });

      await expect(lease.release()).rejects.toBeInstanceOf(UnavailableError);

      expect(auto.sleeps.reduce((sum, ms) => sum + ms, 0)).toBeLessThan(30_000);
      expect(mock.callsTo("DeleteLease").length).toBeGreaterThan(3);
      expect(lease.held).toBe(true);
      mock.clearFaults();
      await other.close();
    });

    it("stops the timers", async () => {
      const lease = await holdLease();
      const onEnding = vi.fn();
      lease.onEnding(MINUTE, onEnding);

      await lease.release();
      await clock.advance(20 * MINUTE);

      expect(onEnding).not.toHaveBeenCalled();
      expect(clock.pendingSleeps).toBe(0);
    });
  });

  describe("asyncDispose", () => {
    it("releases at the end of the scope", async () => {
      {
        await using lease = await holdLease();
        expect(lease.held).toBe(true);
      }

      expect(mock.activeLeases()).toEqual([]);
    });

    it("reports a failed release without throwing", async () => {
      const logger = spyLogger();
      const logged = newClient({ logger });
      const onReleaseError = vi.fn();
      const lease = await holdLease(undefined, { onReleaseError }, logged);
      mock.failNext("DeleteLease", 1, { code: Code.PermissionDenied, message: "permission denied" });

      await expect(lease[Symbol.asyncDispose]()).resolves.toBeUndefined();

      expect(onReleaseError).toHaveBeenCalledWith(expect.any(PermissionDeniedError), lease);
      expect(logger.error).toHaveBeenCalledWith(expect.stringContaining("releasing the lease failed"), expect.objectContaining({ lease: lease.name }));
      await logged.close();
    });
  });

  describe("onEnding", () => {
    it("fires once before the end", async () => {
      const lease = await holdLease();
      const onEnding = vi.fn();
      lease.onEnding(MINUTE, onEnding);

      await clock.advance(8 * MINUTE);
      expect(onEnding).not.toHaveBeenCalled();
      await clock.advance(MINUTE);
      expect(onEnding).toHaveBeenCalledTimes(1);
      expect(onEnding).toHaveBeenCalledWith({ name: lease.name, endsAt: new Date(T0 + 10 * MINUTE), remainingMs: MINUTE });

      await lease.refresh();
      await clock.advance(30 * MINUTE);
      expect(onEnding).toHaveBeenCalledTimes(1);
    });

    it("fires at once with less time left", async () => {
      const lease = await holdLease();
      const onEnding = vi.fn();

      lease.onEnding(20 * MINUTE, onEnding);
      await clock.advance(0);

      expect(onEnding).toHaveBeenCalledTimes(1);
    });

    it("follows an extension", async () => {
      const lease = await holdLease();
      const onEnding = vi.fn();
      lease.onEnding(MINUTE, onEnding);

      await lease.extend("10m");
      await clock.advance(9 * MINUTE);
      expect(onEnding).not.toHaveBeenCalled();
      await clock.advance(10 * MINUTE);
      expect(onEnding).toHaveBeenCalledTimes(1);
    });

    it("stops when cancelled", async () => {
      const lease = await holdLease();
      const onEnding = vi.fn();

      const cancel = lease.onEnding(MINUTE, onEnding);
      cancel();
      await clock.advance(10 * MINUTE);

      expect(onEnding).not.toHaveBeenCalled();
    });
  });

  describe("onEnded", () => {
    it("fires once when the lease expires", async () => {
      const lease = await holdLease(undefined, { watchIntervalMs: 60 * MINUTE });
      const onEnded = vi.fn();
      lease.onEnded(onEnded);

      await clock.advance(10 * MINUTE);
      await vi.waitFor(() => expect(onEnded).toHaveBeenCalledTimes(1));

      expect(onEnded.mock.calls[0]?.[0]).toBeInstanceOf(LeaseEndedError);
      expect(onEnded.mock.calls[0]?.[0].reason).toBe("Expired");
      expect(lease.held).toBe(false);
      await lease.refresh();
      await clock.advance(60 * MINUTE);
      expect(onEnded).toHaveBeenCalledTimes(1);
      expect(clock.pendingSleeps).toBe(0);
    });

    it("fires when released elsewhere", async () => {
      const lease = await holdLease(undefined, { watchIntervalMs: MINUTE });
      const onEnded = vi.fn();
      lease.onEnded(onEnded);

      await client.deleteLease(lease.name);
      await clock.advance(MINUTE);

      await vi.waitFor(() => expect(onEnded).toHaveBeenCalledTimes(1));
      expect(onEnded.mock.calls[0]?.[0].reason).toBe("Released");
    });

    it("fires when transferred", async () => {
      const lease = await holdLease(undefined, { watchIntervalMs: MINUTE });
      const onEnded = vi.fn();
      lease.onEnded(onEnded);

      await client.updateLease(lease.name, { client: "other-runner" });
      await clock.advance(MINUTE);

      await vi.waitFor(() => expect(onEnded).toHaveBeenCalledTimes(1));
      expect(onEnded.mock.calls[0]?.[0].reason).toBe("Transferred");
    });

    it("stays silent after release", async () => {
      const lease = await holdLease(undefined, { watchIntervalMs: MINUTE });
      const onEnded = vi.fn();
      lease.onEnded(onEnded);

      await lease.release();
      await clock.advance(20 * MINUTE);

      expect(onEnded).not.toHaveBeenCalled();
    });
  });

  describe("autoExtend", () => {
    it("stops at maxTotal", async () => {
      const lease = await holdLease(undefined, { autoExtend: { by: "10m", beforeEndMs: MINUTE, maxTotal: "25m" } });

      await clock.advance(9 * MINUTE);
      await vi.waitFor(() => expect(lease.endsAt?.getTime()).toBe(T0 + 20 * MINUTE));
      await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
      await clock.advance(10 * MINUTE);
      await vi.waitFor(() => expect(lease.endsAt?.getTime()).toBe(T0 + 25 * MINUTE));
      await vi.waitFor(() => expect(clock.pendingSleeps).toBe(1));
      await clock.advance(5 * MINUTE);
      await vi.waitFor(() => expect(clock.pendingSleeps).toBe(0));

      expect(updateRequests().map((request) => request.lease?.duration?.seconds)).toEqual([1200n, 1500n]);
      await clock.advance(10 * MINUTE);
      await expect(lease.refresh()).resolves.toMatchObject({ effectiveEndTime: expect.anything() });
      expect(updateRequests()).toHaveLength(2);
    });

    it("retries a failed extension", async () => {
      const logger = spyLogger();
      const logged = newClient({ logger });
      const lease = await holdLease(undefined, { autoExtend: { by: "10m", beforeEndMs: MINUTE, maxTotal: "1h" } }, logged);
      mock.failNext("UpdateLease", 1, { code: Code.Unavailable, message: "controller restarting" });

      await clock.advance(9 * MINUTE);
      await vi.waitFor(() => expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining("automatic extension failed"), expect.anything()));
      expect(clock.pendingSleeps).toBe(1);
      await clock.advance(5_000);

      await vi.waitFor(() => expect(lease.endsAt?.getTime()).toBe(T0 + 20 * MINUTE));
      expect(mock.callsTo("UpdateLease")).toHaveLength(2);
      await lease.release();
      await logged.close();
    });
  });
});
