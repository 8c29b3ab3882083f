import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CreateLeaseRequest } from "../src/generated.js";
import {
  AlreadyExistsError,
  InvalidArgumentError,
  LeaseEndedError,
  LeaseTimeoutError,
  LeaseUnsatisfiableError,
  PermissionDeniedError,
  isLeaseReady,
  leaseCondition,
  shortId,
  type Lease,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { ClientPool } from "./helpers/client-pool.js";
import { VirtualClock } from "./helpers/virtual-clock.js";

const EXPORTERS = [
  { name: "rpi4-01", labels: { board: "rpi4", location: "lab-a" } },
  { name: "rpi4-02", labels: { board: "rpi4", location: "lab-b" } },
  { name: "jetson-01", labels: { board: "jetson-orin" } },
];
const CLIENT = "ci-runner";
const OTHER_CLIENT = "other-runner";
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let mock: MockController;
const pool = new ClientPool(() => mock);


/** Leases of this test's client that have not ended. */
function ownActiveLeases(): Lease[] {
  return mock.activeLeases().filter((lease) => lease.client === `namespaces/lab/clients/${CLIENT}`);
}

function findLease(id: string): Lease | undefined {
  return mock.leases().find((lease) => shortId(lease.name) === id);
}

function blockExporter(exporterName: string): Lease {
  return mock.createLeaseAs(OTHER_CLIENT, { exporterName, durationMs: 3_600_000 });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (error: unknown) => error,
  );
}

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: CLIENT, exporters: EXPORTERS });
});

afterEach(async () => {
  await pool.closeAll();
  await mock.close();
});

describe("JumpstarterClient", () => {
  describe("acquireLease", () => {
    it("returns a ready handle", async () => {
      const client = pool.open();

      const lease = await client.acquireLease({ selector: "board=rpi4,location=lab-b", duration: "30m" });

      expect(lease.id).toMatch(UUID_V7);
      expect(lease.name).toBe(`namespaces/lab/leases/${lease.id}`);
      expect(lease.exporter).toBe("rpi4-02");
      expect(lease.exporterLabels).toEqual({ board: "rpi4", location: "lab-b" });
      expect(isLeaseReady(lease.lease)).toBe(true);
      expect(lease.endsAt!.getTime() - Date.now()).toBeGreaterThan(29 * 60_000);
      const [create] = mock.callsTo("CreateLease");
      expect((create?.request as CreateLeaseRequest).leaseId).toBe(lease.id);

      await lease.release();
      expect(ownActiveLeases()).toEqual([]);
    });

    it("polls first within 250 ms", async () => {
      const clock = new VirtualClock({ autoAdvance: true, random: 0.999 });
      const client = pool.open({ clock });

      await using lease = await client.acquireLease({ selector: "board=rpi4", duration: "30m" });

      expect(lease.exporter).toMatch(/^rpi4-0[12]$/);
      expect(clock.sleeps[0]).toBeLessThanOrEqual(250);
    });

    it("takes over its lease after a lost create response", async () => {
      const client = pool.open();
      mock.loseResponseNext("CreateLease", 1, { code: Code.Unavailable, message: "connection reset by peer" });

      const lease = await client.acquireLease({ selector: "board=rpi4", duration: "30m" });

      const creates = mock.callsTo("CreateLease").map((call) => (call.request as CreateLeaseRequest).leaseId);
      expect(creates).toEqual([lease.id, lease.id]);
      expect(mock.leases()).toHaveLength(1);
      expect(isLeaseReady(lease.lease)).toBe(true);
      await lease.release();
    });

    it("rejects an id that another client holds", async () => {
      const client = pool.open();
      mock.createLeaseAs(OTHER_CLIENT, { leaseId: "taken", selector: "board=rpi4", durationMs: 60_000 });

      const error = await rejection(client.acquireLease({ leaseId: "taken", selector: "board=rpi4", duration: "30m" }));

      expect(error).toBeInstanceOf(AlreadyExistsError);
      expect((error as Error).message).toContain("belongs to another client");
      expect(mock.callsTo("DeleteLease")).toHaveLength(0);
      expect(mock.activeLeases().map((lease) => shortId(lease.name))).toEqual(["taken"]);
    });

    it("rejects an id used for another selector", async () => {
      const client = pool.open();
      await client.createLease({ leaseId: "mine", selector: "board=jetson-orin", duration: "30m" });

      const error = await rejection(client.acquireLease({ leaseId: "mine", selector: "board=rpi4", duration: "30m" }));

      expect(error).toBeInstanceOf(AlreadyExistsError);
      expect((error as Error).message).toContain('has another selector ("board=jetson-orin")');
      expect(mock.callsTo("DeleteLease")).toHaveLength(0);
    });

    it("retries a create that fails UNAVAILABLE", async () => {
      const clock = new VirtualClock({ autoAdvance: true });
      const client = pool.open({ clock });
      mock.failNext("CreateLease", 2, { code: Code.Unavailable, message: "controller restarting" });
      const onProgress = vi.fn();

      await using lease = await client.acquireLease({ selector: "board=rpi4", duration: "30m", onProgress });

      expect(mock.callsTo("CreateLease")).toHaveLength(3);
      expect(onProgress.mock.calls.filter(([event]) => event.kind === "error")).toHaveLength(2);
      expect(lease.exporter).toMatch(/^rpi4-/);
    });

    it("deletes an unsatisfiable lease", async () => {
      const client = pool.open();

      const error = await rejection(client.acquireLease({ selector: "board=none", duration: "30m" }));

      expect(error).toBeInstanceOf(LeaseUnsatisfiableError);
      const [deleted] = mock.callsTo("DeleteLease");
      expect(deleted?.request).toMatchObject({ name: (error as LeaseUnsatisfiableError).resource });
    });

    it("deletes the lease on timeout", async () => {
      const client = pool.open({ clock: new VirtualClock({ autoAdvance: true }) });
      blockExporter("jetson-01");

      const error = await rejection(client.acquireLease({ selector: "board=jetson-orin", duration: "30m", timeoutMs: 30_000 }));

      expect(error).toBeInstanceOf(LeaseTimeoutError);
      const ours = findLease(shortId((error as LeaseTimeoutError).resource!));
      expect(leaseCondition(ours!, "Ready")).toMatchObject({ status: "False", reason: "Released" });
    });

    it("deletes the lease on abort", async () => {
      const client = pool.open();
      blockExporter("jetson-01");
      const controller = new AbortController();
      const reason = new Error("cancelled by the user");

      const acquiring = client.acquireLease({
        selector: "board=jetson-orin",
        duration: "30m",
        signal: controller.signal,
        onProgress: () => controller.abort(reason),
      });

      await expect(acquiring).rejects.toBe(reason);
      expect(ownActiveLeases()).toEqual([]);
      expect(mock.callsTo("DeleteLease")).toHaveLength(1);
    });

    it("gets the exporter when another client releases it", async () => {
      const client = pool.open();
      const other = await pool.openAs(OTHER_CLIENT);
      const blocker = await other.acquireLease({ exporterName: "jetson-01", duration: "1h" });
      const states: string[] = [];

      const lease = await client.acquireLease({
        exporterName: "jetson-01",
        duration: "30m",
        maxDelayMs: 200,
        onProgress: (event) => {
          if (event.kind !== "state") return;
          states.push(event.state.summary);
          if (event.state.reason === "NotAvailable") void blocker.release();
        },
      });

      expect(lease.exporter).toBe("jetson-01");
      expect(states[0]).toBe("waiting for the controller to schedule the lease");
      expect(states[1]).toMatch(/^Pending \(NotAvailable\)/);
      expect(states.at(-1)).toBe("Ready: exporter jetson-01 is assigned");
      expect(blocker.held).toBe(false);
      await lease.release();
    });

    it("rejects an invalid request before any call", async () => {
      const client = pool.open();

      await expect(client.acquireLease({ duration: "30m" })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(
        client.acquireLease({ selector: "board=rpi4", duration: "30m", autoExtend: { by: 0, beforeEndMs: 1000, maxTotal: "1h" } }),
      ).rejects.toThrow(/invalid autoExtend.by 0/);
      await expect(client.acquireLease({ selector: "board=rpi4", duration: "30m", timeoutMs: 0 })).rejects.toThrow(/invalid timeoutMs 0/);
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("withLease", () => {
    it("releases after the callback returns", async () => {
      const client = pool.open();

      const exporter = await client.withLease({ selector: "board=rpi4", duration: "30m" }, (lease) => lease.exporter);

      expect(exporter).toMatch(/^rpi4-/);
      expect(ownActiveLeases()).toEqual([]);
    });

    it("releases after the callback throws", async () => {
      const client = pool.open();
      const failure = new Error("flashing failed");

      const outcome = client.withLease({ selector: "board=rpi4", duration: "30m" }, async () => {
        throw failure;
      });

      await expect(outcome).rejects.toBe(failure);
      expect(ownActiveLeases()).toEqual([]);
    });

    it("releases after an abort inside the callback", async () => {
      const client = pool.open();
      const controller = new AbortController();

      const outcome = client.withLease({ selector: "board=rpi4", duration: "30m", signal: controller.signal }, async (lease) => {
        controller.abort(new Error("stopped"));
        await lease.refresh({ signal: controller.signal });
      });

      await expect(outcome).rejects.toThrow("stopped");
      expect(ownActiveLeases()).toEqual([]);
    });

    it("keeps the callback's error when the release fails", async () => {
      const client = pool.open();
      const failure = new Error("test failed");
      const onReleaseError = vi.fn();
      mock.failNext("DeleteLease", 1, { code: Code.PermissionDenied, message: "permission denied" });

      const outcome = client.withLease({ selector: "board=rpi4", duration: "30m", onReleaseError }, async () => {
        throw failure;
      });

      await expect(outcome).rejects.toBe(failure);
      expect(onReleaseError).toHaveBeenCalledTimes(1);
      expect(onReleaseError.mock.calls[0]?.[0]).toBeInstanceOf(PermissionDeniedError);
    });

    it("rejects when the release fails after success", async () => {
      const client = pool.open();
      mock.failNext("DeleteLease", 1, { code: Code.PermissionDenied, message: "permission denied" });

      const outcome = client.withLease({ selector: "board=rpi4", duration: "30m" }, () => "done");

      await expect(outcome).rejects.toBeInstanceOf(PermissionDeniedError);
    });
  });

  describe("attachLease", () => {
    it("attaches a lease of this client", async () => {
      const client = pool.open();
      const created = await client.createLease({ exporterName: "rpi4-01", duration: "30m" });

      const lease = await client.attachLease(shortId(created.name));

      expect(lease.name).toBe(created.name);
      expect(lease.exporter).toBe("rpi4-01");
      expect(lease.exporterLabels).toMatchObject({ board: "rpi4" });
      await lease.release();
      expect(ownActiveLeases()).toEqual([]);
    });

    it("rejects an ended lease", async () => {
      const client = pool.open();
      const created = await client.createLease({ exporterName: "rpi4-01", duration: "30m" });
      await client.deleteLease(created.name);

      const error = await rejection(client.attachLease(created.name));

      expect(error).toBeInstanceOf(LeaseEndedError);
      expect((error as LeaseEndedError).reason).toBe("Released");
      expect((error as Error).message).toContain("ended before it could be attached");
    });

    it("rejects another client's lease", async () => {
      const client = pool.open();
      const foreign = mock.createLeaseAs(OTHER_CLIENT, { exporterName: "rpi4-01", durationMs: 60_000 });

      const error = await rejection(client.attachLease(foreign.name));

      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect((error as Error).message).toContain(`cannot attach lease "${foreign.name}": it belongs to another client`);
    });

    it("leaves the lease when the wait fails", async () => {
      const client = pool.open({ clock: new VirtualClock({ autoAdvance: true }) });
      blockExporter("rpi4-01");
      const created = await client.createLease({ exporterName: "rpi4-01", duration: "30m" });

      await expect(client.attachLease(created.name, { timeoutMs: 10_000 })).rejects.toBeInstanceOf(LeaseTimeoutError);

      expect(ownActiveLeases().map((lease) => lease.name)).toEqual([created.name]);
      expect(mock.callsTo("DeleteLease")).toHaveLength(0);
    });
  });

  describe("lease leak check", () => {
    it("leaves no lease after failures", async () => {
      const clock = new VirtualClock({ autoAdvance: true });
      const client = pool.open({ clock });
      blockExporter("jetson-01");
      const request = { selector: "board=jetson-orin", duration: "30m" };
      const failures: unknown[] = [];
      const attempt = async (run: () => Promise<unknown>) => failures.push(await rejection(run()));

      // A timeout, after a create whose response was lost.
      mock.loseResponseNext("CreateLease", 1, { code: Code.Unavailable, message: "connection reset" });
      await attempt(() => client.acquireLease({ ...request, timeoutMs: 20_000 }));

      // An abort while waiting, and one while the create is in flight.
      const waiting = new AbortController();
      await attempt(() => client.acquireLease({ ...request, signal: waiting.signal, onProgress: () => waiting.abort() }));
      const creating = new AbortController();
      mock.stallNext("CreateLease", 1, { ms: 200 });
      setTimeout(() => creating.abort(), 20);
      await attempt(() => client.acquireLease({ ...request, signal: creating.signal }));

      // Throws inside withLease, one of them while the release meets UNAVAILABLE twice.
      await attempt(() => client.withLease({ selector: "board=rpi4", duration: "30m" }, () => Promise.reject(new Error("step failed"))));
      mock.failNext("DeleteLease", 2, { code: Code.Unavailable, message: "controller restarting" });
      await attempt(() => client.withLease({ selector: "board=rpi4", duration: "30m" }, () => Promise.reject(new Error("step failed"))));

      // An unsatisfiable lease, and a controller fault that ends the wait.
      await attempt(() => client.acquireLease({ selector: "board=none", duration: "30m" }));
      mock.failNext("GetLease", 1, { code: Code.Internal, message: "etcd request timed out" });
      await attempt(() => client.acquireLease(request));

      expect(failures).toHaveLength(7);
      expect(failures.every((failure) => failure instanceof Error)).toBe(true);
      expect(ownActiveLeases()).toEqual([]);
    });
  });
});
