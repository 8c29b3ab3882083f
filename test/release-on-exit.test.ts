import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startMockController, type MockController } from "../src/testing/index.js";

const CHILD = fileURLToPath(new URL("./fixtures/release-on-exit-child.ts", import.meta.url));

let mock: MockController;
let child: ChildProcess | undefined;

// Starts the child and resolves with its output once it prints `expected`.
async function startChild(env: Record<string, string> = {}, expected = "ready "): Promise<{ output: () => string }> {
  const started = spawn(process.execPath, ["--import", "tsx", CHILD], {
    env: {
      ...process.env,
      MOCK_ENDPOINT: mock.endpoint,
      MOCK_NAMESPACE: mock.namespace,
      MOCK_TOKEN: mock.token,
      MOCK_CLIENT: mock.clientName,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child = started;
  let output = "";
  started.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  started.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await vi.waitFor(() => expect(output).toContain(expected), { timeout: 15_000, interval: 20 });
  return { output: () => output };
}

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }] });
});

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  child = undefined;
  await mock.close();
});

describe("releaseOnExit", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("releases the lease on %s and exits", async (signal) => {
    await startChild();
    expect(mock.activeLeases()).toHaveLength(1);

    const exited = once(child!, "exit");
    child!.kill(signal);
    const [code, exitSignal] = await exited;

    expect(exitSignal).toBe(signal);
    expect(code).toBeNull();
    expect(mock.activeLeases()).toEqual([]);
    expect(mock.callsTo("DeleteLease")).toHaveLength(1);
  });

  it("releases a lease that is still pending", async () => {
    const blocker = mock.createLeaseAs("other-runner", { exporterName: "rpi4-01", durationMs: 3_600_000 });
    await startChild({}, "waiting");

    const exited = once(child!, "exit");
    child!.kill("SIGTERM");
    const [, exitSignal] = await exited;

    expect(exitSignal).toBe("SIGTERM");
    expect(mock.activeLeases().map((lease) => lease.name)).toEqual([blocker.name]);
  });

  it("leaves the exit to the application's own handler", async () => {
    const { output } = await startChild({ APP_SIGTERM_HANDLER: "1" });

    child!.kill("SIGTERM");

    await vi.waitFor(() => expect(mock.activeLeases()).toEqual([]), { timeout: 10_000 });
    expect(output()).toContain("application handler ran");
    expect(child!.exitCode).toBeNull();
    expect(child!.signalCode).toBeNull();
  });
});
