import { fork, type ChildProcess } from "node:child_process";

/** Options of {@link runWorker}. */
export interface WorkerOptions {
  /** Extra Node flags, such as `--expose-gc` or `--cpu-prof`. */
  nodeFlags?: readonly string[];
  /** Load the script through tsx, for TypeScript files. Default `true`. */
  typescript?: boolean;
  /** Kill the worker and reject after this many milliseconds. */
  timeoutMs: number;
  /** Working directory of the worker. Default: the current one. */
  cwd?: string;
}

/** Message that a worker sends over IPC when it finishes. */
export type WorkerMessage<T> = { result: T } | { error: string };

/**
 * Runs `script` in a fresh Node process with `input` as its JSON argument, and resolves with the
 * result that the script sends with {@link sendWorkerResult}.
 *
 * @throws Error when the worker fails, exits without a result, or outlives `timeoutMs`.
 */
export function runWorker<T>(script: string, input: unknown, options: WorkerOptions): Promise<T> {
  const execArgv = [...(options.typescript === false ? [] : ["--import", "tsx"]), ...(options.nodeFlags ?? [])];
  const child = fork(script, [JSON.stringify(input)], { execArgv, cwd: options.cwd, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return awaitWorker<T>(child, script, options.timeoutMs);
}

function awaitWorker<T>(child: ChildProcess, script: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let message: WorkerMessage<T> | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`worker ${script} did not finish within ${timeoutMs} ms and was killed.`));
    }, timeoutMs);

    child.on("message", (received) => {
      message = received as WorkerMessage<T>;
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (message !== undefined && "result" in message) resolve(message.result);
      else if (message !== undefined) reject(new Error(`worker ${script} failed: ${message.error}`));
      else reject(new Error(`worker ${script} exited with ${signal ?? `code ${code}`} before sending a result.`));
    });
  });
}

/** Reads the JSON argument that {@link runWorker} passes to a worker script. */
export function readWorkerInput<T>(): T {
  const text = process.argv[2];
  if (text === undefined) throw new Error("missing worker input: run this script through runWorker().");
  return JSON.parse(text) as T;
}

/**
 * Runs a worker's main function, sends its result or error to the parent over IPC, and lets the
 * process exit once the message is sent.
 */
export async function sendWorkerResult<T>(main: () => Promise<T>): Promise<void> {
  let message: WorkerMessage<T>;
  try {
    message = { result: await main() };
  } catch (error) {
    message = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
  await new Promise<void>((resolve) => process.send!(message, () => resolve()));
  process.disconnect();
}
