import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConditionSchema, LeaseSchema } from "../src/generated.js";
import {
  InvalidArgumentError,
  JumpstarterClient,
  LeaseEndedError,
  LeaseInvalidError,
  LeaseTimeoutError,
  LeaseUnsatisfiableError,
  NotFoundError,
  UnavailableError,
  describeLeaseState,
  evaluateLease,
  isLeaseReady,
  leaseCondition,
  pollDelayMs,
  shortId,
  type Lease,
  type LeaseProgress,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { ClientPool } from "./helpers/client-pool.js";
import { VirtualClock } from "./helpers/virtual-clock.js";

const EXPORTERS = [
  { name: "rpi4-01", labels: { board: "rpi4" } },
  { name: "jetson-01", labels: { board: "jetson-orin" } },
];
const OTHER_CLIENT = "other-runner";

let mock: MockController;
const pool = new ClientPool(() => mock);


// Creates a lease of this client on rpi4-01 while another client holds that exporter, so it stays
// Pending until the other lease ends. Returns the pending lease's id and the other lease's name.
async function pendingLease(client: JumpstarterClient): Promise<{ id: string; blocker: string }> {
  const blocker = mock.createLeaseAs(OTHER_CLIENT, { exporterName: "rpi4-01", durationMs: 3_600_000 });
  const lease = await client.createLease({ exporterName: "rpi4-01", duration: "30m" });
  return { id: shortId(lease.name), blocker: blocker.name };
}

function condition(type: string, status: string, reason: string, message = "") {
  return create(ConditionSchema, { type, status, reason, message });
}

function lease(...conditions: ReturnType<typeof condition>[]): Lease {
  return create(LeaseSchema, { name: "namespaces/lab/leases/l1", conditions, exporter: "namespaces/lab/exporters/rpi4-01" });
}

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: EXPORTERS });
});

afterEach(async () => {
  await pool.closeAll();
  await mock.close();
});

describe("pollDelayMs", () => {
  it("puts the first poll within 250 ms", () => {
    expect(pollDelayMs(0, 0)).toBe(125);
    expect(pollDelayMs(0, 0.999999)).toBeLessThanOrEqual(250);
    expect(pollDelayMs(0, 0.5)).toBe(188);
  });

  it("doubles the base with each attempt", () => {
    const delays = [0, 1, 2, 3, 4].map((attempt) => pollDelayMs(attempt, 0));
    expect(delays).toEqual([125, 250, 500, 1000, 2000]);
  });

  it("keeps jitter within the upper half of the base", () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const base = 250 * 2 ** attempt;
      for (const random of [0, 0.25, 0.5, 0.75, 0.999]) {
        const delay = pollDelayMs(attempt, random);
        expect(delay).toBeGreaterThanOrEqual(base / 2);
        expect(delay).toBeLessThanOrEqual(base);
      }
    }
  });

  it("caps every delay at maxDelayMs", () => {
    expect(pollDelayMs(5, 0.999)).toBe(5_000);
    expect(pollDelayMs(6, 0)).toBe(5_000);
    expect(pollDelayMs(60, 0.5)).toBe(5_000);
    expect(pollDelayMs(2, 0.999, { minDelayMs: 100, maxDelayMs: 300 })).toBe(300);
  });

  it("rejects maxDelayMs below minDelayMs", () => {
    expect(() => pollDelayMs(0, 0.5, { minDelayMs: 1000, maxDelayMs: 500 })).toThrow(InvalidArgumentError);
    expect(() => pollDelayMs(0, 0.5, { minDelayMs: 0 })).toThrow(/invalid minDelayMs 0/);
  });
});

describe("evaluateLease", () => {
  it("is ready despite a stale Pending", () => {
    const outcome = evaluateLease(lease(condition("Pending", "True", "NotAvailable"), condition("Ready", "True", "Ready")));
    expect(outcome.kind).toBe("ready");
  });

  it("waits without conditions", () => {
    expect(evaluateLease(lease()).kind).toBe("waiting");
  });

  it("waits through Unsatisfiable NoExporter", () => {
    expect(evaluateLease(lease(condition("Unsatisfiable", "True", "NoExporter"))).kind).toBe("waiting");
  });

  it("fails on Unsatisfiable with its reason", () => {
    const outcome = evaluateLease(lease(condition("Unsatisfiable", "True", "NoAccess", "no exporter matches")));
    expect(outcome.kind).toBe("failed");
    const error = outcome.kind === "failed" ? outcome.error : undefined;
    expect(error).toBeInstanceOf(LeaseUnsatisfiableError);
    expect(error?.reason).toBe("NoAccess");
    expect(error?.conditionMessage).toBe("no exporter matches");
    expect(error?.message).toContain('lease "namespaces/lab/leases/l1" cannot be satisfied (NoAccess): no exporter matches');
  });

  it("fails on Invalid", () => {
    const outcome = evaluateLease(lease(condition("Invalid", "True", "InvalidSelector", "bad selector")));
    expect(outcome.kind).toBe("failed");
    expect(outcome.kind === "failed" ? outcome.error : undefined).toBeInstanceOf(LeaseInvalidError);
  });

  it("fails on Ready=False Released", () => {
    const outcome = evaluateLease(lease(condition("Ready", "False", "Released", "The lease was marked for release")));
    const error = outcome.kind === "failed" ? outcome.error : undefined;
    expect(error).toBeInstanceOf(LeaseEndedError);
    expect(error?.reason).toBe("Released");
  });

  it("fails on an effective end time", () => {
    const ended = lease(condition("Ready", "True", "Ready"));
    ended.effectiveEndTime = timestampFromDate(new Date("2030-01-01T00:00:00Z"));
    expect(evaluateLease(ended).kind).toBe("failed");
  });
});

describe("describeLeaseState", () => {
  it("names the assigned exporter when ready", () => {
    const state = describeLeaseState(lease(condition("Pending", "True", "NotAvailable"), condition("Ready", "True", "Ready")));
    expect(state.type).toBe("Ready");
    expect(state.summary).toBe("Ready: exporter rpi4-01 is assigned");
  });

  it("puts reason and message in the summary", () => {
    const state = describeLeaseState(lease(condition("Pending", "True", "NotAvailable", "all exporters are leased")));
    expect(state.summary).toBe("Pending (NotAvailable): all exporters are leased");
  });

  it("describes a lease without conditions", () => {
    expect(describeLeaseState(lease()).summary).toBe("waiting for the controller to schedule the lease");
  });
});

describe("JumpstarterClient", () => {
  describe("waitForLease", () => {
    it("resolves once the lease is Ready", async () => {
      const client = pool.open();
      const created = await client.createLease({ selector: "board=rpi4", duration: "30m" });
      const progress: LeaseProgress[] = [];

      const ready = await client.waitForLease(created.name, { onProgress: (event) => progress.push(event) });

      expect(isLeaseReady(ready)).toBe(true);
      expect(leaseCondition(ready, "Pending")?.status).toBe("True");
      expect(progress.at(-1)).toMatchObject({ kind: "state", state: { type: "Ready" } });
    });

    it("rejects an unsatisfiable lease", async () => {
      const client = pool.open();
      const created = await client.createLease({ selector: "board=none", duration: "30m" });

      const error = await client.waitForLease(created.name).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(LeaseUnsatisfiableError);
      expect((error as LeaseUnsatisfiableError).reason).toBe("NoAccess");
      expect((error as LeaseUnsatisfiableError).conditionMessage).toContain("no exporter matches");
      expect((error as LeaseUnsatisfiableError).resource).toBe(created.name);
    });

    it("waits through NoExporter until Ready", async () => {
      const client = pool.open();
      const other = await pool.openAs(OTHER_CLIENT);
      const { id, blocker } = await pendingLease(client);
      mock.setLeaseCondition(id, { type: "Unsatisfiable", status: "True", reason: "NoExporter", message: "no exporter free" });
      const reasons: string[] = [];

      const ready = await client.waitForLease(id, {
        maxDelayMs: 200,
        onProgress: (event) => {
          if (event.kind !== "state") return;
          reasons.push(event.state.reason ?? "");
          if (event.state.reason === "NoExporter") void other.deleteLease(blocker);
        },
      });

      expect(isLeaseReady(ready)).toBe(true);
      expect(reasons[0]).toBe("NoExporter");
      expect(reasons.at(-1)).toBe("Ready");
    });

    it("rejects an invalid lease", async () => {
      const client = pool.open();
      const { id } = await pendingLease(client);
      mock.setLeaseCondition(id, { type: "Invalid", status: "True", reason: "InvalidSpec", message: "duration is too long" });

      const error = await client.waitForLease(id).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(LeaseInvalidError);
      expect((error as LeaseInvalidError).reason).toBe("InvalidSpec");
      expect((error as LeaseInvalidError).message).toContain("duration is too long");
    });

    it("rejects a lease that expires while pending", async () => {
      const client = pool.open();
      const { id } = await pendingLease(client);
      mock.endLease(id);

      const error = await client.waitForLease(id).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(LeaseEndedError);
      expect((error as LeaseEndedError).reason).toBe("Expired");
    });

    it("rejects a lease released while pending", async () => {
      const client = pool.open();
      const { id } = await pendingLease(client);
      await client.deleteLease(id);

      const error = await client.waitForLease(id).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(LeaseEndedError);
      expect((error as LeaseEndedError).reason).toBe("Released");
    });

    it("times out naming the lease and its last state", async () => {
      const clock = new VirtualClock({ autoAdvance: true });
      const client = pool.open({ clock });
      const { id } = await pendingLease(client);

      const error = await client.waitForLease(id, { timeoutMs: 60_000 }).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(LeaseTimeoutError);
      const timeout = error as LeaseTimeoutError;
      expect(timeout.waitedMs).toBe(60_000);
      expect(timeout.reason).toBe("NotAvailable");
      expect(timeout.message).toContain(`lease "namespaces/lab/leases/${id}" was not ready after 1m`);
      expect(timeout.message).toContain("last state: Pending (NotAvailable)");
      expect(clock.sleeps.slice(0, 8)).toEqual([188, 375, 750, 1500, 3000, 5000, 5000, 5000]);
      expect(clock.sleeps.reduce((sum, ms) => sum + ms, 0)).toBe(60_000);
    });

    it("uses the client's leaseTimeoutMs", async () => {
      const clock = new VirtualClock({ autoAdvance: true });
      const client = pool.open({ clock, leaseTimeoutMs: 10_000 });
      const { id } = await pendingLease(client);

      const error = await client.waitForLease(id).catch((caught: unknown) => caught);

      expect((error as LeaseTimeoutError).waitedMs).toBe(10_000);
    });

    it("rejects with the abort reason", async () => {
      const client = pool.open();
      const { id } = await pendingLease(client);
      const controller = new AbortController();
      const reason = new Error("the test run was cancelled");

      const wait = client.waitForLease(id, { signal: controller.signal, onProgress: () => controller.abort(reason) });

      await expect(wait).rejects.toBe(reason);
    });

    it("outlasts UNAVAILABLE reads", async () => {
      const clock = new VirtualClock({ autoAdvance: true });
      const client = pool.open({ clock });
      const created = await client.createLease({ selector: "board=rpi4", duration: "30m" });
      mock.failNext("GetLease", 3, { code: Code.Unavailable, message: "controller restarting" });
      const errors: unknown[] = [];

      const ready = await client.waitForLease(created.name, {
        onProgress: (event) => {
          if (event.kind === "error") errors.push(event.error);
        },
      });

      expect(isLeaseReady(ready)).toBe(true);
      expect(errors).toHaveLength(3);
      expect(errors[0]).toBeInstanceOf(UnavailableError);
    });

    it("outlasts a controller down for 2 s", async () => {
      await mock.close();
      mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: EXPORTERS, readyDelayMs: 1_000 });
      const client = pool.open();
      const created = await client.createLease({ selector: "board=rpi4", duration: "30m" });
      const errors: LeaseProgress[] = [];
      let restarting: Promise<void> | undefined;

      const ready = await client.waitForLease(created.name, {
        maxDelayMs: 400,
        onProgress: (event) => {
          if (event.kind === "error") errors.push(event);
          restarting ??= mock.restart({ downtimeMs: 2_000 });
        },
      });
      await restarting;

      expect(isLeaseReady(ready)).toBe(true);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]).toMatchObject({ kind: "error", error: { retryable: true } });
    });

    it("rejects a missing lease at once", async () => {
      const client = pool.open();

      await expect(client.waitForLease("no-such-lease")).rejects.toBeInstanceOf(NotFoundError);
      expect(mock.callsTo("GetLease")).toHaveLength(1);
    });

    it("rejects invalid options before any call", async () => {
      const client = pool.open();

      await expect(client.waitForLease("l1", { maxDelayMs: 10, minDelayMs: 100 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(client.waitForLease("l1", { timeoutMs: -1 })).rejects.toThrow(/invalid timeoutMs -1/);
      expect(mock.calls).toHaveLength(0);
    });
  });
});
