import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { MockMethod } from "@jumpstarter/sdk/testing";

/** Address and credentials of a mock controller that runs in its own process. */
export interface MockProcess {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  readonly namespace: string;
  /** A valid token of the default client. */
  readonly token: string;
  /** Adds `ms` of server latency to every later call of `method`, or removes it when `ms` is 0. */
  delayAll(method: MockMethod, ms: number): Promise<void>;
  /** Empties the mock's call log, which otherwise grows by one record per call. */
  clearCalls(): Promise<void>;
  /** Stops the mock and waits for its process to exit. */
  close(): Promise<void>;
}

/** Options of {@link startMockProcess}. */
export interface MockProcessOptions {
  /** Number of exporters in the lab, built by `benchExporters`. */
  exporterCount: number;
}

/** Message from the parent to the mock's process. */
export type MockProcessCommand =
  | { id: number; command: "delayAll"; method: MockMethod; ms: number }
  | { id: number; command: "clearCalls" }
  | { id: number; command: "close" };

/** Message from the mock's process to the parent. */
export type MockProcessReply =
  | { ready: { endpoint: string; namespace: string; token: string } }
  | { id: number; done: true }
  | { id?: number; error: string };

const START_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * Starts the mock controller in a child process, so that the server's CPU time and heap are not
 * counted in the client's measurements. The machine needs a core for each of the two processes.
 */
export async function startMockProcess(options: MockProcessOptions): Promise<MockProcess> {
  const script = fileURLToPath(new URL("./mock-process-main.ts", import.meta.url));
  const child = fork(script, [JSON.stringify(options)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await waitForReply(child, (reply) => "ready" in reply, START_TIMEOUT_MS, "start the mock controller");
  return new MockProcessHandle(child, (ready as { ready: { endpoint: string; namespace: string; token: string } }).ready);
}

class MockProcessHandle implements MockProcess {
  readonly endpoint: string;
  readonly namespace: string;
  readonly token: string;
  readonly #child: ChildProcess;
  #nextId = 1;

  constructor(child: ChildProcess, ready: { endpoint: string; namespace: string; token: string }) {
    this.#child = child;
    this.endpoint = ready.endpoint;
    this.namespace = ready.namespace;
    this.token = ready.token;
  }

  delayAll(method: MockMethod, ms: number): Promise<void> {
    return this.#send({ id: this.#nextId++, command: "delayAll", method, ms });
  }

  clearCalls(): Promise<void> {
    return this.#send({ id: this.#nextId++, command: "clearCalls" });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    await this.#send({ id: this.#nextId++, command: "close" });
    await exited;
  }

  async #send(command: MockProcessCommand): Promise<void> {
    const reply = waitForReply(this.#child, (message) => "id" in message && message.id === command.id, COMMAND_TIMEOUT_MS, command.command);
    this.#child.send(command);
    await reply;
  }
}

function waitForReply(
  child: ChildProcess,
  matches: (reply: MockProcessReply) => boolean,
  timeoutMs: number,
  operation: string,
): Promise<MockProcessReply> {
  return new Promise((resolve, reject) => {
    const finish = (error: Error | undefined, reply?: MockProcessReply): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (error === undefined) resolve(reply!);
      else reject(error);
    };
    const onMessage = (message: unknown): void => {
      const reply = message as MockProcessReply;
      if ("error" in reply) finish(new Error(`mock controller process failed to ${operation}: ${reply.error}`));
      else if (matches(reply)) finish(undefined, reply);
    };
    const onExit = (code: number | null): void => finish(new Error(`mock controller process exited with code ${code} during ${operation}`));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(new Error(`mock controller process did not ${operation} within ${timeoutMs} ms and was killed.`));
    }, timeoutMs);
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}
