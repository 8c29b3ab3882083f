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
  /** Returns the logged calls of `method`, oldest first. */
  callsTo(method: MockMethod): Promise<MockProcessCall[]>;
  /** Sets the time from a lease taking an exporter to Ready, in milliseconds, for leases created later. */
  setReadyDelay(ms: number): Promise<void>;
  /**
   * Returns when each lease became Ready, in milliseconds since the epoch on the mock's clock, keyed
   * by the lease's full name, or `null` for a lease that has never been Ready. The time is the lease's
   * `effective_begin_time`, which the mock sets from its clock to the millisecond when it makes the
   * lease Ready.
   */
  leaseReadyTimes(): Promise<Record<string, number | null>>;
  /** Signs a token for the default client that was issued at `issuedAtMs` and lives `lifetimeMs`. */
  issueToken(options: { lifetimeMs: number; issuedAtMs: number }): Promise<string>;
  /** Stops the mock and waits for its process to exit. */
  close(): Promise<void>;
}

/** Options of {@link startMockProcess}. */
export interface MockProcessOptions {
  /** Number of exporters in the lab, built by `benchExporters`. */
  exporterCount: number;
}

/** One logged call, as {@link MockProcess.callsTo} returns it. */
export interface MockProcessCall {
  /** Arrival time on the mock's clock, in milliseconds since the epoch. */
  atMs: number;
  /** The request's `name` field, such as the lease of a GetLease call, or `""` when it has none. */
  name: string;
  /** Bearer token of the `authorization` header, or `""` when the call had none. */
  token: string;
}

/** Message from the parent to the mock's process. */
export type MockProcessCommand =
  | { id: number; command: "delayAll"; method: MockMethod; ms: number }
  | { id: number; command: "clearCalls" }
  | { id: number; command: "callsTo"; method: MockMethod }
  | { id: number; command: "setReadyDelay"; ms: number }
  | { id: number; command: "leaseReadyTimes" }
  | { id: number; command: "issueToken"; lifetimeMs: number; issuedAtMs: number }
  | { id: number; command: "close" };

/** Message from the mock's process to the parent. `value` is the result of a command that returns one. */
export type MockProcessReply =
  | { ready: { endpoint: string; namespace: string; token: string } }
  | { id: number; done: true; value?: unknown }
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

  async delayAll(method: MockMethod, ms: number): Promise<void> {
    await this.#send({ id: this.#nextId++, command: "delayAll", method, ms });
  }

  async clearCalls(): Promise<void> {
    await this.#send({ id: this.#nextId++, command: "clearCalls" });
  }

  async callsTo(method: MockMethod): Promise<MockProcessCall[]> {
    return (await this.#send({ id: this.#nextId++, command: "callsTo", method })) as MockProcessCall[];
  }

  async setReadyDelay(ms: number): Promise<void> {
    await this.#send({ id: this.#nextId++, command: "setReadyDelay", ms });
  }

  async leaseReadyTimes(): Promise<Record<string, number | null>> {
    return (await this.#send({ id: this.#nextId++, command: "leaseReadyTimes" })) as Record<string, number | null>;
  }

  async issueToken(options: { lifetimeMs: number; issuedAtMs: number }): Promise<string> {
    return (await this.#send({ id: this.#nextId++, command: "issueToken", ...options })) as string;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    await this.#send({ id: this.#nextId++, command: "close" });
    await exited;
  }

  // Resolves with the command's `value`, or undefined for a command that returns nothing.
  async #send(command: MockProcessCommand): Promise<unknown> {
    const reply = waitForReply(this.#child, (message) => "id" in message && message.id === command.id, COMMAND_TIMEOUT_MS, command.command);
    this.#child.send(command);
    return ((await reply) as { value?: unknown }).value;
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
