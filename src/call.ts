import type { CallOptions as ConnectCallOptions } from "@connectrpc/connect";
import { setMaxListeners } from "node:events";
import { ClientClosedError, InvalidArgumentError, toJumpstarterError } from "./errors.js";

/** Options that every client method accepts as its last argument. */
export interface CallOptions {
  /** Aborts the call; the returned promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Deadline of the call in milliseconds, sent to the controller as `grpc-timeout`. Default: the client's `timeoutMs` (30,000). */
  timeoutMs?: number;
  /** Extra request headers. They cannot replace the authentication headers that the client sets. */
  headers?: ConnectCallOptions["headers"];
}

/** Default deadline of one call, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** What a call is about, for error messages and logs. */
export interface CallContext {
  /** The operation in words, such as `get lease`. */
  operation: string;
  /** The resource name involved, when there is one. */
  resource?: string;
}

/**
 * Checks a timeout option.
 *
 * @throws InvalidArgumentError for a value that is not a positive finite number of milliseconds.
 */
export function validateTimeoutMs(value: number | undefined, what = "timeoutMs"): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`invalid ${what} ${String(value)}: expected a positive number of milliseconds.`);
  }
  return value;
}

/**
 * Runs the RPCs of one client: it applies the default deadline, joins the caller's signal with the
 * client's close signal, and turns every failure into a `JumpstarterError`.
 */
export class CallRunner {
  readonly #defaultTimeoutMs: number;
  readonly #closed = new AbortController();
  readonly #describeTokenExpiry: () => Date | undefined;

  constructor(options: { timeoutMs?: number; tokenExpiresAt?: () => Date | undefined }) {
    this.#defaultTimeoutMs = validateTimeoutMs(options.timeoutMs) ?? DEFAULT_TIMEOUT_MS;
    this.#describeTokenExpiry = options.tokenExpiresAt ?? (() => undefined);
    // Every call in flight adds an abort listener to this signal, so 11 concurrent calls would make
    // Node warn about a possible leak. Each listener goes away when its call ends.
    setMaxListeners(0, this.#closed.signal);
  }

  /** Aborted when the client closes; waits and timers listen to it. */
  get closedSignal(): AbortSignal {
    return this.#closed.signal;
  }

  /** The default deadline of a call in milliseconds. */
  get defaultTimeoutMs(): number {
    return this.#defaultTimeoutMs;
  }

  /** Marks the client closed and aborts every call in flight with `ClientClosedError`. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new ClientClosedError("the client was closed while the call was in flight; create a new client."));
  }

  /**
   * Throws `ClientClosedError` when the client is closed, so that no RPC leaves a closed client.
   */
  assertOpen(context: CallContext): void {
    if (this.#closed.signal.aborted) {
      throw new ClientClosedError(
        `cannot ${context.operation}${context.resource ? ` "${context.resource}"` : ""}: the client is closed; create a new client.`,
        { resource: context.resource },
      );
    }
  }

  /**
   * Runs one RPC. `rpc` receives the connect call options to pass through; failures are rethrown
   * as `JumpstarterError`, except an abort by the caller, which rejects with the signal's reason.
   */
  async run<T>(context: CallContext, options: CallOptions | undefined, rpc: (callOptions: ConnectCallOptions) => Promise<T>): Promise<T> {
    this.assertOpen(context);
    const timeoutMs = validateTimeoutMs(options?.timeoutMs) ?? this.#defaultTimeoutMs;
    const callerSignal = options?.signal;
    callerSignal?.throwIfAborted();

    const signal = callerSignal ? AbortSignal.any([callerSignal, this.#closed.signal]) : this.#closed.signal;
    try {
      return await rpc({ signal, timeoutMs, headers: options?.headers });
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (this.#closed.signal.aborted) throw this.#closed.signal.reason;
      throw toJumpstarterError(error, { ...context, tokenExpiresAt: this.#describeTokenExpiry() });
    }
  }
}
