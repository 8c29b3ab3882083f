import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  ClientClosedError,
  DeadlineExceededError,
  FailedPreconditionError,
  JumpstarterClient,
  PageTokenExpiredError,
  UnavailableError,
  isLeaseEnded,
  type JumpstarterClientOptions,
  type Logger,
} from "../src/index.js";
import { startMockController, type MockController, type MockMethod } from "../src/testing/index.js";

const UNAVAILABLE = { code: Code.Unavailable, message: "controller restarting" };
// Short waits keep the tests fast; the backoff arithmetic itself is tested in retry.test.ts.
const QUICK_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
// Enough attempts to outlast a restart: 99 waits of up to 20 ms add up to about 1 s, and to less
// than 0.5 s with a chance far below one in a million.
const RESTART_RETRY = { maxAttempts: 100, baseDelayMs: 20, maxDelayMs: 20 };
const EXPORTERS = Array.from({ length: 25 }, (_, i) => ({ name: `rpi4-${String(i).padStart(2, "0")}`, labels: { board: "rpi4" } }));

let mock: MockController;
const openClients: JumpstarterClient[] = [];

function newClient(overrides: Partial<JumpstarterClientOptions> = {}): JumpstarterClient {
  const client = new JumpstarterClient({
    endpoint: mock.endpoint,
    namespace: mock.namespace,
    token: mock.token,
    clientName: mock.clientName,
    retry: QUICK_RETRY,
    ...overrides,
  });
  openClients.push(client);
  return client;
}

function exporterIds(exporters: Array<{ name: string }>): string[] {
  return exporters.map((exporter) => exporter.name.split("/").pop()!);
}

// An interceptor that lets the first call of `method` reach the controller but replaces its
// response with UNAVAILABLE, as when the connection drops before the response arrives.
function loseFirstResponse(method: MockMethod): Interceptor {
  let lost = false;
  return (next) => async (request) => {
    const response = await next(request);
    if (request.method.name === method && !lost) {
      lost = true;
      throw new ConnectError("connection reset by peer", Code.Unavailable);
    }
    return response;
  };
}

// Lists the open handles beyond `baseline`, by type: a type counts as extra when it is open more
// often than in the baseline.
function handlesBeyond(baseline: string[]): string[] {
  const remaining = [...baseline];
  return process.getActiveResourcesInfo().filter((type) => {
    const index = remaining.indexOf(type);
    if (index === -1) return true;
    remaining.splice(index, 1);
    return false;
  });
}

// Waits up to a second for the handles to return to `baseline`, because sockets finish closing on
// a later tick, and returns those still open.
async function handlesLeftAfterClose(baseline: string[]): Promise<string[]> {
  for (let tick = 0; tick < 100 && handlesBeyond(baseline).length > 0; tick++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return handlesBeyond(baseline);
}

// Waits until `condition` holds, checking every 5 ms, for at most 5 s.
async function until(condition: () => boolean): Promise<void> {
  for (let tick = 0; tick < 1000 && !condition(); tick++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(condition()).toBe(true);
}

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: EXPORTERS });
});

afterEach(async () => {
  for (const client of openClients.splice(0)) await client.close();
  await mock.close();
});

describe("JumpstarterClient faults", () => {
  describe("retries", () => {
    it("succeeds after N UNAVAILABLE answers", async () => {
      mock.failNext("GetExporter", 4, UNAVAILABLE);
      const exporter = await newClient().getExporter("rpi4-01");
      expect(exporter.name).toBe("namespaces/lab/exporters/rpi4-01");
      expect(mock.callsTo("GetExporter")).toHaveLength(5);
    });

    it("fails after the default 8 attempts", async () => {
      mock.failNext("GetExporter", 8, UNAVAILABLE);
      const error = await newClient().getExporter("rpi4-01").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toContain("Gave up after 8 attempts.");
      expect(mock.callsTo("GetExporter")).toHaveLength(8);
    });

    it.each<[string, MockMethod, (client: JumpstarterClient, leaseName: string) => Promise<unknown>]>([
      ["getExporter", "GetExporter", (client) => client.getExporter("rpi4-01")],
      ["getLease", "GetLease", (client, leaseName) => client.getLease(leaseName)],
      ["listExporters", "ListExporters", (client) => client.listExporters().toArray()],
      ["listLeases", "ListLeases", (client) => client.listLeases().toArray()],
      ["deleteLease", "DeleteLease", (client, leaseName) => client.deleteLease(leaseName)],
      ["createLease with an id", "CreateLease", (client) => client.createLease({ selector: "board=rpi4", duration: "1h", leaseId: "fixed-id" })],
    ])("retries %s", async (_, method, call) => {
      const client = newClient();
      const lease = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      mock.clearCalls();
      mock.failNext(method, 2, UNAVAILABLE);
      await call(client, lease.name);
      expect(mock.callsTo(method)).toHaveLength(3);
    });

    it.each<[string, MockMethod, (client: JumpstarterClient, leaseName: string) => Promise<unknown>]>([
      ["updateLease", "UpdateLease", (client, leaseName) => client.updateLease(leaseName, { duration: "2h" })],
      ["rotateToken", "RotateToken", (client) => client.rotateToken()],
      ["createLease without an id", "CreateLease", (client) => client.createLease({ selector: "board=rpi4", duration: "1h" })],
    ])("never retries %s", async (_, method, call) => {
      const client = newClient();
      const lease = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      mock.clearCalls();
      mock.failNext(method, 1, UNAVAILABLE);
      await expect(call(client, lease.name)).rejects.toBeInstanceOf(UnavailableError);
      expect(mock.callsTo(method)).toHaveLength(1);
    });

    it("never retries DEADLINE_EXCEEDED", async () => {
      mock.failNext("GetLease", 1, { code: Code.DeadlineExceeded, message: "upstream timed out" });
      await expect(newClient().getLease("abc")).rejects.toBeInstanceOf(DeadlineExceededError);
      expect(mock.callsTo("GetLease")).toHaveLength(1);
    });

    it("sends once with per-call retry false", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      await expect(newClient().getExporter("rpi4-01", { retry: false })).rejects.toBeInstanceOf(UnavailableError);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("sends once with client retry false", async () => {
      mock.failNext("ListLeases", 1, UNAVAILABLE);
      await expect(newClient({ retry: false }).listLeases().toArray()).rejects.toBeInstanceOf(UnavailableError);
      expect(mock.callsTo("ListLeases")).toHaveLength(1);
    });

    it("treats a release by a lost attempt as success", async () => {
      // The first DeleteLease reaches the controller, which releases the lease, but its response is lost.
      const client = newClient({ interceptors: [loseFirstResponse("DeleteLease")] });
      const lease = await client.createLease({ selector: "board=rpi4", duration: "1h" });

      await client.deleteLease(lease.name);
      expect(mock.callsTo("DeleteLease")).toHaveLength(2);
      expect(isLeaseEnded(await client.getLease(lease.name))).toBe(true);
    });

    it("reports a lost create as AlreadyExistsError", async () => {
      // The first CreateLease reaches the controller, which creates the lease, but its response is lost.
      const client = newClient({ interceptors: [loseFirstResponse("CreateLease")] });

      const error = await client.createLease({ selector: "board=rpi4", duration: "1h", leaseId: "lost-create" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AlreadyExistsError);
      expect(mock.callsTo("CreateLease")).toHaveLength(2);
      await expect(client.getLease("lost-create")).resolves.toMatchObject({ name: "namespaces/lab/leases/lost-create" });
    });

    it("still fails a second release", async () => {
      const client = newClient();
      const lease = await client.createLease({ selector: "board=rpi4", duration: "1h" });
      await client.deleteLease(lease.name);
      await expect(client.deleteLease(lease.name)).rejects.toBeInstanceOf(FailedPreconditionError);
    });

    it("logs retries to the logger", async () => {
      const records: Array<Record<string, unknown> | undefined> = [];
      const logger: Logger = { debug: () => {}, info: () => {}, warn: (_, fields) => records.push(fields), error: () => {} };
      mock.failNext("GetLease", 2, UNAVAILABLE);
      await newClient({ logger }).getLease("abc").catch(() => {});
      expect(records).toMatchObject([
        { operation: "get lease", resource: "namespaces/lab/leases/abc", attempt: 1 },
        { operation: "get lease", resource: "namespaces/lab/leases/abc", attempt: 2 },
      ]);
      expect(JSON.stringify(records)).not.toContain(mock.token);
    });
  });

  describe("listing", () => {
    it("resumes across a restart with every item once", async () => {
      const client = newClient({ retry: RESTART_RETRY });
      // The first page passes; the second stalls in the controller until the restart drops it.
      mock.stallNext("ListExporters", 1, { ms: 0 });
      mock.stallNext("ListExporters", 1, {});

      const seen: string[] = [];
      let restarted: Promise<void> | undefined;
      for await (const page of client.listExporters({ pageSize: 10 }).byPage()) {
        seen.push(...exporterIds(page.items));
        if (restarted === undefined) {
          // Restart only once the second page's request is stalled in the controller.
          await until(() => mock.callsTo("ListExporters").length === 2);
          restarted = mock.restart({ downtimeMs: 300 });
        }
      }
      await restarted;

      expect(seen).toEqual(EXPORTERS.map((exporter) => exporter.name));
      // Page 1, page 2 dropped by the restart, page 2 again after it, page 3. Attempts during the
      // downtime are refused before they reach the controller.
      const tokens = mock.callsTo("ListExporters").map((call) => (call.request as { pageToken: string }).pageToken);
      expect(tokens).toHaveLength(4);
      expect(tokens[0]).toBe("");
      expect(tokens[2]).toBe(tokens[1]);
      expect(tokens[3]).not.toBe(tokens[2]);
      expect(mock.connectionsAccepted).toBe(2);
    });

    it("raises PageTokenExpiredError for an expired token", async () => {
      // Expire the tokens just before the second page is requested.
      const expireBeforeSecondPage: Interceptor = (next) => (request) => {
        if ((request.message as { pageToken?: string }).pageToken) mock.expirePageTokens();
        return next(request);
      };
      const client = newClient({ interceptors: [expireBeforeSecondPage] });
      const seen: string[] = [];
      const error = await (async () => {
        for await (const exporter of client.listExporters({ pageSize: 10 })) seen.push(exporter.name);
      })().catch((e: unknown) => e);

      expect(error).toBeInstanceOf(PageTokenExpiredError);
      expect((error as Error).message).toContain("start the listing again");
      expect(seen).toHaveLength(10);
      expect(mock.callsTo("ListExporters")).toHaveLength(2);
    });
  });

  describe("deadlines", () => {
    it("fails a slow handler within the deadline", async () => {
      mock.delayAll("GetExporter", 10_000);
      const started = performance.now();
      const error = await newClient().getExporter("rpi4-01", { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      // A generous margin over the 300 ms deadline: only a hang or a retry would pass it.
      expect(performance.now() - started).toBeLessThan(300 + 2000);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });
  });

  describe("connection", () => {
    it("multiplexes concurrent calls on one connection", async () => {
      const client = newClient();
      const names = EXPORTERS.map((exporter) => exporter.name);
      const results = await Promise.all([...names, ...names].map((name) => client.getExporter(name)));
      expect(results).toHaveLength(50);
      expect(mock.connectionsAccepted).toBe(1);
    });

    it("reconnects after GOAWAY", async () => {
      const client = newClient();
      await client.getExporter("rpi4-01");
      mock.goAway();
      await expect(client.getExporter("rpi4-02")).resolves.toMatchObject({ name: "namespaces/lab/exporters/rpi4-02" });
      expect(mock.connectionsAccepted).toBe(2);
    });

    it("reconnects after a restart", async () => {
      const client = newClient();
      await client.getExporter("rpi4-01");
      await mock.restart();
      await expect(client.getExporter("rpi4-02")).resolves.toBeDefined();
      expect(mock.connectionsAccepted).toBe(2);
    });

    it("waits out a restart with downtime", async () => {
      const client = newClient({ retry: RESTART_RETRY });
      await client.getExporter("rpi4-01");
      const restarted = mock.restart({ downtimeMs: 400 });
      await expect(client.getLease("abc")).rejects.toMatchObject({ name: "NotFoundError" });
      await restarted;
    });
  });

  describe("close", () => {
    it("is idempotent and rejects later calls", async () => {
      const client = newClient();
      await client.close();
      await client.close();
      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(ClientClosedError);
      await expect(client.listLeases().toArray()).rejects.toBeInstanceOf(ClientClosedError);
      expect(mock.calls).toHaveLength(0);
    });

    it("runs from Symbol.asyncDispose", async () => {
      const client = newClient();
      await client[Symbol.asyncDispose]();
      await expect(client.getLease("abc")).rejects.toBeInstanceOf(ClientClosedError);
    });

    it("cancels a retry wait", async () => {
      mock.failNext("GetExporter", 1, UNAVAILABLE);
      // The logger runs only after the first attempt fails, when `client` is initialised.
      const logger: Logger = { debug: () => {}, info: () => {}, warn: () => queueMicrotask(() => void client.close()), error: () => {} };
      const client = newClient({ logger, retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
      const started = performance.now();
      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(ClientClosedError);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("leaves no handle open", async () => {
      const baseline = process.getActiveResourcesInfo();
      const client = newClient();
      await client.getExporter("rpi4-01");
      await client.listExporters({ pageSize: 5 }).toArray();
      expect(handlesBeyond(baseline)).toContain("TCPSocketWrap");

      await client.close();
      expect(await handlesLeftAfterClose(baseline)).toEqual([]);
    });

    it("lets a script that never closes exit", async () => {
      const script = fileURLToPath(new URL("./fixtures/call-without-close.ts", import.meta.url));
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        env: { ...process.env, JMP_ENDPOINT: mock.endpoint, JMP_NAMESPACE: mock.namespace, JMP_TOKEN: mock.token },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));

      // The bound covers starting Node.js with tsx; the client's idle timeout is 5 minutes.
      const exitCode = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill();
          resolve(null);
        }, 15_000);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      expect(output).toContain("read namespaces/lab/exporters/rpi4-01 and 0 leases");
      expect(exitCode).toBe(0);
    }, 20_000);
  });
});
