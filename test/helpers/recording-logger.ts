import type { Logger } from "../../src/index.js";

/** One record that a {@link RecordingLogger} received. */
export interface LogRecord {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A logger that keeps every record, and lets a test wait for the next one at a level. */
export class RecordingLogger implements Logger {
  readonly records: LogRecord[] = [];
  readonly #waiters: Array<{ level: LogRecord["level"]; resolve: (record: LogRecord) => void }> = [];

  debug = (message: string, fields?: Record<string, unknown>): void => this.#add("debug", message, fields);
  info = (message: string, fields?: Record<string, unknown>): void => this.#add("info", message, fields);
  warn = (message: string, fields?: Record<string, unknown>): void => this.#add("warn", message, fields);
  error = (message: string, fields?: Record<string, unknown>): void => this.#add("error", message, fields);

  /** Resolves with the next record at `level`. */
  next(level: LogRecord["level"]): Promise<LogRecord> {
    return new Promise((resolve) => this.#waiters.push({ level, resolve }));
  }

  /** Records at `level`. */
  at(level: LogRecord["level"]): LogRecord[] {
    return this.records.filter((record) => record.level === level);
  }

  /** Joins every message and its fields into one text, for checks that a secret never appears. */
  text(): string {
    return this.records.map((record) => `${record.message} ${JSON.stringify(record.fields ?? {})}`).join("\n");
  }

  #add(level: LogRecord["level"], message: string, fields: Record<string, unknown> | undefined): void {
    const record = { level, message, fields };
    this.records.push(record);
    for (const waiter of this.#waiters.filter((w) => w.level === level)) {
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(record);
    }
  }
}

/** Creates a promise and the function that resolves it, for callbacks that a test waits on. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
