import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ClientClosedError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  JumpstarterClient,
  NotFoundError,
  PermissionDeniedError,
  TokenExpiredError,
  UnauthenticatedError,
  UnavailableError,
  isLeaseEnded,
  isLeaseReady,
  leaseCondition,
  leaseEndsAt,
  leaseExporterId,
  type Lease,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";

const EXPORTERS = [
  { name: "rpi4-01", labels: { board: "rpi4", arch: "arm64", "jumpstarter.dev/hidden": "yes" } },
  { name: "rpi4-02", labels: { board: "rpi4", arch: "arm64" } },
  { name: "jetson-01", labels: { board: "jetson-orin", arch: "arm64" } },
  { name: "nuc-01", labels: { board: "nuc", arch: "amd64" }, online: false },
];

let mock: MockController;
let client: JumpstarterClient;

function newClient(overrides: Partial<ConstructorParameters<typeof JumpstarterClient>[0]> = {}): JumpstarterClient {
  return new JumpstarterClient({
    endpoint: mock.endpoint,
    namespace: mock.namespace,
    token: mock.token,
    clientName: mock.clientName,
    ...overrides,
  });
}

async function readyLease(name: string): Promise<Lease> {
  let lease = await client.getLease(name);
  for (let attempt = 0; attempt < 200 && !isLeaseReady(lease); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    lease = await client.getLease(name);
  }
  return lease;
}

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: EXPORTERS });
  client = newClient();
});

afterEach(async () => {
  await client.close();
  await mock.close();
});

describe("JumpstarterClient", () => {
  describe("constructor", () => {
    it.each([
      [{ namespace: "" }, /missing namespace/],
      [{ namespace: "Lab" }, /invalid namespace "Lab"/],
      [{ token: "" }, /missing token/],
      [{ endpoint: "" }, /missing endpoint/],
      [{ endpoint: "ftp://host:1" }, /scheme must be https or http/],
      [{ endpoint: "http://10.1.2.3:8082" }, /refusing plaintext endpoint "http:\/\/10.1.2.3:8082"/],
      [{ timeoutMs: 0 }, /invalid timeoutMs 0/],
      [{ retry: { maxAttempts: 0 } }, /invalid retry.maxAttempts 0/],
      [{ clientName: "Bad Name" }, /invalid client id "Bad Name"/],
    ])("rejects %j", (overrides, message) => {
      expect(() => newClient(overrides)).toThrow(InvalidArgumentError);
      expect(() => newClient(overrides)).toThrow(message);
    });

    it("accepts plaintext for a remote host when allowed", () => {
      const remote = newClient({ endpoint: "http://controller.example:8082", allowInsecureTransport: true });
      expect(remote.namespace).toBe("lab");
      void remote.close();
    });

    it("keeps the token out of inspect and JSON", async () => {
      const { inspect } = await import("node:util");
      expect(inspect(client, { showHidden: true, depth: 10 })).not.toContain(mock.token);
      expect(JSON.stringify(client)).not.toContain(mock.token);
    });
  });

  describe("metadata", () => {
    it("sends the identity headers", async () => {
      await client.getExporter("rpi4-01");
      const [call] = mock.callsTo("GetExporter");
      expect(call?.headers["authorization"]).toBe(`Bearer ${mock.token}`);
      expect(call?.headers["jumpstarter-kind"]).toBe("Client");
      expect(call?.headers["jumpstarter-namespace"]).toBe("lab");
      expect(call?.headers["jumpstarter-name"]).toBe("ci-runner");
    });

    it("omits the name when unknown", async () => {
      const anonymous = newClient({ clientName: undefined });
      await anonymous.getExporter("rpi4-01");
      await anonymous.close();
      expect(mock.callsTo("GetExporter")[0]?.headers["jumpstarter-name"]).toBeUndefined();
    });

    it("passes extra headers without replacing auth", async () => {
      await client.getExporter("rpi4-01", { headers: { "x-trace": "t1", authorization: "Bearer other" } });
      const [call] = mock.callsTo("GetExporter");
      expect(call?.headers["x-trace"]).toBe("t1");
      expect(call?.headers["authorization"]).toBe(`Bearer ${mock.token}`);
    });
  });

  describe("getExporter", () => {
    it("reads by short id", async () => {
      const exporter = await client.getExporter("rpi4-01");
      expect(exporter.name).toBe("namespaces/lab/exporters/rpi4-01");
      expect(exporter.labels).toEqual({ board: "rpi4", arch: "arm64" });
    });

    it("reads by full name with hidden labels", async () => {
      const exporter = await client.getExporter("namespaces/lab/exporters/rpi4-01", { showHiddenLabels: true });
      expect(exporter.labels["jumpstarter.dev/hidden"]).toBe("yes");
    });

    it("maps a missing exporter to NotFoundError", async () => {
      const error = await client.getExporter("nope").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).resource).toBe("namespaces/lab/exporters/nope");
      expect((error as Error).message).toContain('get exporter "namespaces/lab/exporters/nope" failed');
    });

    it.each(["namespaces/other/exporters/rpi4-01", "namespaces/lab/leases/rpi4-01", "Bad!"])("rejects %j with no RPC", async (name) => {
      await expect(client.getExporter(name)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(mock.calls).toHaveLength(0);
    });

    it("runs 64 calls at once without a listener warning", async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => void warnings.push(warning);
      process.on("warning", onWarning);
      try {
        const exporters = await Promise.all(Array.from({ length: 64 }, () => client.getExporter("rpi4-01")));
        expect(exporters).toHaveLength(64);
        // Node emits the warning on the next tick after the listener that crossed the limit.
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off("warning", onWarning);
      }
      expect(warnings.map((warning) => warning.name)).not.toContain("MaxListenersExceededWarning");
    });
  });

  describe("listExporters", () => {
    it("lists all in name order", async () => {
      const names = (await client.listExporters({ pageSize: 2 }).toArray()).map((e) => e.name.split("/").pop());
      expect(names).toEqual(["jetson-01", "nuc-01", "rpi4-01", "rpi4-02"]);
      expect(mock.callsTo("ListExporters")).toHaveLength(2);
    });

    it("filters by selector", async () => {
      const names = (await client.listExporters({ filter: "board=rpi4" }).toArray()).map((e) => e.name);
      expect(names).toEqual(["namespaces/lab/exporters/rpi4-01", "namespaces/lab/exporters/rpi4-02"]);
      expect(mock.callsTo("ListExporters")[0]?.request).toMatchObject({ filter: "board=rpi4", parent: "namespaces/lab", pageSize: 100 });
    });

    it("yields pages", async () => {
      const sizes: number[] = [];
      for await (const page of client.listExporters({ pageSize: 3 }).byPage()) sizes.push(page.items.length);
      expect(sizes).toEqual([3, 1]);
    });

    it("stops at maxItems", async () => {
      expect(await client.listExporters({ pageSize: 2, maxItems: 3 }).toArray()).toHaveLength(3);
      expect(mock.callsTo("ListExporters").map((c) => (c.request as { pageSize: number }).pageSize)).toEqual([2, 1]);
    });

    it("leaves the query unchanged", async () => {
      const query = Object.freeze({ filter: "arch=arm64", pageSize: 1 });
      await client.listExporters(query).toArray();
      expect(query).toEqual({ filter: "arch=arm64", pageSize: 1 });
    });

    it("rejects a malformed filter with no RPC", () => {
      expect(() => client.listExporters({ filter: "board in rpi4" })).toThrow(/position 9/);
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("createLease", () => {
    it("creates a ready lease", async () => {
      const created = await client.createLease({ selector: "board=rpi4", duration: "1h", tags: { team: "kernel" } });
      expect(created.name).toMatch(/^namespaces\/lab\/leases\/[0-9a-f-]{36}$/);
      expect(created.client).toBe("namespaces/lab/clients/ci-runner");
      const lease = await readyLease(created.name);
      expect(isLeaseReady(lease)).toBe(true);
      expect(leaseExporterId(lease)).toBe("rpi4-01");
      expect(leaseCondition(lease, "Ready")?.reason).toBe("Ready");
      expect(leaseEndsAt(lease)!.getTime()).toBeGreaterThan(Date.now());
    });

    it("uses the given lease id", async () => {
      const lease = await client.createLease({ selector: "board=rpi4", duration: 60_000, leaseId: "my-lease" });
      expect(lease.name).toBe("namespaces/lab/leases/my-lease");
    });

    it("leases a named exporter", async () => {
      const lease = await readyLease((await client.createLease({ exporterName: "namespaces/lab/exporters/jetson-01", duration: "5m" })).name);
      expect(leaseExporterId(lease)).toBe("jetson-01");
      expect((mock.callsTo("CreateLease")[0]?.request as { lease: { exporterName: string } }).lease.exporterName).toBe("jetson-01");
    });

    it("reports an unsatisfiable selector", async () => {
      const created = await client.createLease({ selector: "board=nothing", duration: "5m" });
      const lease = await client.getLease(created.name);
      expect(leaseCondition(lease, "Unsatisfiable")?.status).toBe("True");
      expect(leaseCondition(lease, "Unsatisfiable")?.reason).toBe("NoAccess");
    });

    it.each([
      [{ duration: "1h" }],
      [{ selector: "board=rpi4" }],
      [{ selector: "board=rpi4", duration: 0 }],
      [{ selector: "board==", duration: "1h", tags: { "a/b": "c" } }],
      [{ selector: "board=rpi4", duration: "1h", context: { k: "v".repeat(65) } }],
    ])("rejects %j with no RPC", async (spec) => {
      await expect(client.createLease(spec as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("getLease", () => {
    it("maps a missing lease to NotFoundError", async () => {
      await expect(client.getLease("0193a7b0-0000-7000-8000-000000000000")).rejects.toBeInstanceOf(NotFoundError);
    });

    it("maps another client's lease to PermissionDeniedError", async () => {
      const other = mock.createLeaseAs("someone-else", { selector: "board=rpi4", durationMs: 60_000 });
      await expect(client.getLease(other.name)).rejects.toBeInstanceOf(PermissionDeniedError);
    });
  });

  describe("listLeases", () => {
    it("hides ended leases unless asked", async () => {
      const kept = await client.createLease({ selector: "board=rpi4", duration: "1h", tags: { team: "a" } });
      const ended = await client.createLease({ selector: "board=rpi4", duration: "1h", tags: { team: "b" } });
      await client.deleteLease(ended.name);

      const active = await client.listLeases().toArray();
      expect(active.map((l) => l.name)).toEqual([kept.name]);
      expect((mock.callsTo("ListLeases")[0]?.request as { onlyActive?: boolean }).onlyActive).toBeUndefined();

      const all = await client.listLeases({ includeEnded: true }).toArray();
      expect(all.map((l) => l.name).sort()).toEqual([kept.name, ended.name].sort());
      expect((mock.callsTo("ListLeases")[1]?.request as { onlyActive?: boolean }).onlyActive).toBe(false);
    });

    it("filters by tag", async () => {
      await client.createLease({ selector: "board=rpi4", duration: "1h", tags: { team: "a" } });
      const b = await client.createLease({ selector: "board=rpi4", duration: "1h", tags: { team: "b" } });
      const found = await client.listLeases({ tagFilter: "team=b" }).toArray();
      expect(found.map((l) => l.name)).toEqual([b.name]);
    });
  });

  describe("updateLease", () => {
    it("changes the duration", async () => {
      const created = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      const updated = await client.updateLease(created.name, { duration: "2h" });
      expect(Number(updated.duration?.seconds)).toBe(7200);
      expect(mock.callsTo("UpdateLease")[0]?.request).toMatchObject({ updateMask: { paths: ["duration"] } });
    });

    it("rejects an empty change with no RPC", async () => {
      await expect(client.updateLease("abc", {})).rejects.toThrow(/nothing to update/);
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("deleteLease", () => {
    it("releases the lease", async () => {
      const created = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      await client.deleteLease(created.name);
      const lease = await client.getLease(created.name);
      expect(isLeaseEnded(lease)).toBe(true);
      expect(leaseCondition(lease, "Ready")?.reason).toBe("Released");
    });

    it("fails the second time", async () => {
      const created = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      await client.deleteLease(created.name);
      await expect(client.deleteLease(created.name)).rejects.toBeInstanceOf(FailedPreconditionError);
    });
  });

  describe("rotateToken", () => {
    it("switches to the new token", async () => {
      const rotated = await client.rotateToken();
      expect(rotated.token).not.toBe(mock.token);
      expect(rotated.expiresAt?.getTime()).toBeGreaterThan(Date.now());
      await client.getExporter("rpi4-01");
      expect(mock.callsTo("GetExporter")[0]?.headers["authorization"]).toBe(`Bearer ${rotated.token}`);
      expect((mock.callsTo("RotateToken")[0]?.request as { parent: string }).parent).toBe("namespaces/lab");
    });
  });

  describe("authentication", () => {
    it("maps an expired token to TokenExpiredError", async () => {
      const expired = await mock.issueToken({ lifetimeMs: 1000, issuedAt: new Date(Date.now() - 60_000) });
      const stale = newClient({ token: expired });
      await expect(stale.getExporter("rpi4-01")).rejects.toBeInstanceOf(TokenExpiredError);
      await stale.close();
    });

    it("maps a bad token to UnauthenticatedError", async () => {
      const bad = newClient({ token: "not-a-jwt" });
      const error = await bad.getExporter("rpi4-01").catch((e: unknown) => e);
      await bad.close();
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect((error as Error).message).not.toContain("not-a-jwt");
    });

    it("maps a namespace mismatch to PermissionDeniedError", async () => {
      const otherNamespaceToken = await mock.issueToken({ namespace: "other" });
      const wrong = newClient({ token: otherNamespaceToken });
      await expect(wrong.getExporter("rpi4-01")).rejects.toBeInstanceOf(PermissionDeniedError);
      await wrong.close();
    });
  });

  describe("deadlines", () => {
    it("fails a stalled call within the deadline", async () => {
      mock.stallNext("GetExporter", 1, {});
      const started = performance.now();
      const error = await client.getExporter("rpi4-01", { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(performance.now() - started).toBeLessThan(5000);
    });

    it("sends grpc-timeout from the client default", async () => {
      const quick = newClient({ timeoutMs: 1500 });
      await quick.getExporter("rpi4-01");
      await quick.close();
      const timeout = mock.callsTo("GetExporter")[0]?.headers["grpc-timeout"];
      expect(timeout).toMatch(/^\d+m$/);
      expect(Number.parseInt(timeout!, 10)).toBeLessThanOrEqual(1500);
    });
  });

  describe("abort", () => {
    it("rejects with the signal's reason", async () => {
      mock.stallNext("GetExporter", 1, {});
      const controller = new AbortController();
      const reason = new Error("stop now");
      const pending = client.getExporter("rpi4-01", { signal: controller.signal });
      setTimeout(() => controller.abort(reason), 20);
      await expect(pending).rejects.toBe(reason);
    });

    it("sends nothing when already aborted", async () => {
      await expect(client.getExporter("rpi4-01", { signal: AbortSignal.abort() })).rejects.toThrow();
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("faults", () => {
    it("retries one UNAVAILABLE", async () => {
      mock.failNext("GetExporter", 1, { code: Code.Unavailable, message: "controller restarting" });
      await expect(client.getExporter("rpi4-01")).resolves.toMatchObject({ name: "namespaces/lab/exporters/rpi4-01" });
      expect(mock.callsTo("GetExporter")).toHaveLength(2);
    });

    it("maps UNAVAILABLE to UnavailableError without retries", async () => {
      mock.failNext("GetLease", 1, { code: Code.Unavailable, message: "controller restarting" });
      const error = await client.getLease("abc", { retry: false }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as UnavailableError).retryable).toBe(true);
    });
  });

  describe("close", () => {
    it("rejects later calls", async () => {
      await client.close();
      await client.close();
      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(ClientClosedError);
      expect(mock.calls).toHaveLength(0);
    });

    it("rejects a call in flight", async () => {
      mock.stallNext("GetExporter", 1, {});
      const pending = client.getExporter("rpi4-01");
      setTimeout(() => void client.close(), 20);
      await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
    });
  });
});
