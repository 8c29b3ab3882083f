import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { CallRunner, validateTimeoutMs, type CallOptions } from "./call.js";
import { createClientFromConfig, type FromConfigOptions } from "./config/from-config.js";
import { TokenManager, type TokenRotationOptions } from "./credentials/token-manager.js";
import type { TokenProvider } from "./credentials/token-provider.js";
import { TOKEN_STORE, type TokenStore } from "./credentials/token-store.js";
import { FailedPreconditionError, InvalidArgumentError, type JumpstarterError } from "./errors.js";
import {
  ClientService,
  ListExportersRequestSchema,
  ListLeasesRequestSchema,
  type Exporter,
  type Lease,
} from "./generated.js";
import { buildCreateLeaseRequest, buildUpdateLeaseRequest, type LeaseChanges, type LeaseSpec } from "./lease-spec.js";
import { resolveLogger, type Logger } from "./logger.js";
import { SENT_TOKEN, createMetadataInterceptor } from "./metadata.js";
import { formatResourceName, shortId, toResourceName, validateNamespace } from "./names.js";
import { PagedIterable, type PaginationOptions } from "./pagination.js";
import type { RetrySetting } from "./retry.js";
import { parseSelector } from "./selector.js";
import { createConnection, parseEndpoint, withInterceptors, type ConnectionOptions, type TlsOptions } from "./transport.js";
import { acquireLease, attachLease, withLease, type AcquireLeaseRequest, type AttachLeaseOptions } from "./lease/acquire.js";
import { systemClock, type LeaseClock } from "./lease/clock.js";
import type { LeaseContext } from "./lease/context.js";
import type { LeaseHandle } from "./lease/handle.js";
import { registerReleaseOnExit, type ReleaseOnExitOptions } from "./lease/release-on-exit.js";
import { DEFAULT_LEASE_TIMEOUT_MS, waitForLease, type WaitForLeaseOptions } from "./lease/wait.js";

/** Options of {@link JumpstarterClient}. */
export interface JumpstarterClientOptions {
  /**
   * Controller address: `host:port` (TLS, as `jmp` config files write it), `https://host:port`, or
   * `http://host:port` (plaintext, loopback hosts only unless `allowInsecureTransport`). Optional
   * when `transport` is given.
   */
  endpoint?: string;
  /** Kubernetes namespace of the client, such as `lab`. */
  namespace: string;
  /**
   * Bearer token of the client, or a provider that returns one (for OIDC setups). A fixed token is
   * rotated with RotateToken before it expires (see `tokenRotation`); a provider is asked again
   * instead. The token never appears in logs, errors or `util.inspect` output.
   */
  token: string | TokenProvider;
  /**
   * Called, and awaited, after the client switched to a token from RotateToken, automatic or from
   * `rotateToken()`, so that the caller can persist it. Not called for a provider's tokens.
   * Default: none.
   */
  onTokenRotated?: (rotated: RotatedToken) => void | Promise<void>;
  /** Automatic token renewal. Default: on, 30 days before expiry but no earlier than half the token's lifetime. */
  tokenRotation?: TokenRotationOptions;
  /** Name of the client object, sent as `jumpstarter-name`. Default: not sent. */
  clientName?: string;
  /** TLS settings: a private CA, or `insecure` to skip verification. Default: system CAs, verified. */
  tls?: TlsOptions;
  /** Default deadline of each call in milliseconds. Default 30,000. */
  timeoutMs?: number;
  /** Accept `http://` endpoints on non-loopback hosts, sending the token in clear text. Default `false`. */
  allowInsecureTransport?: boolean;
  /** HTTP/2 keepalive and idle settings. */
  connection?: ConnectionOptions;
  /** Connect interceptors to run on every call, after the SDK's own (tracing, metrics). */
  interceptors?: Interceptor[];
  /** A ready transport to use instead of opening a connection to `endpoint`, such as an in-memory one. */
  transport?: Transport;
  /** Destination of the SDK's log records. Default: silent, or stderr when `JUMPSTARTER_SDK_DEBUG=1`. */
  logger?: Logger;
  /**
   * Retries after UNAVAILABLE or a broken connection, for calls that are safe to repeat: reads,
   * each page of a listing, DeleteLease, and CreateLease with a `leaseId`. `false` sends every call
   * once. Default: 8 attempts in total, waits drawn from [0, 100 ms) doubling up to 5,000 ms, all
   * within the call's `timeoutMs`.
   */
  retry?: RetrySetting;
  /**
   * Default timeout of `waitForLease`, `acquireLease` and `attachLease`, in milliseconds.
   * `fromConfig()` sets it from the config's `leases.acquisition_timeout` (seconds). Default
   * 7,200,000 (two hours, as `jmp`).
   */
  leaseTimeoutMs?: number;
  /**
   * On SIGINT or SIGTERM, release every lease this client holds (within 5 s, or `timeoutMs`), then
   * let the signal end the process as it would have. Default `false`.
   */
  releaseOnExit?: boolean | ReleaseOnExitOptions;
  /** Time source of lease waits and lease timers, for tests. Default: the system clock. */
  clock?: LeaseClock;
}

/** Options of {@link JumpstarterClient.getExporter}. */
export interface GetExporterOptions extends CallOptions {
  /** Include labels that the controller hides by default (`jumpstarter.dev/...`). Default `false`. */
  showHiddenLabels?: boolean;
}

/** Query of {@link JumpstarterClient.listExporters}. */
export interface ExporterQuery extends PaginationOptions {
  /** Kubernetes label selector over exporter labels, such as `board=rpi4,location in (lab-a)`. */
  filter?: string;
  /** Include labels that the controller hides by default. Default `false`. */
  showHiddenLabels?: boolean;
}

/** Query of {@link JumpstarterClient.listLeases}. */
export interface LeaseQuery extends PaginationOptions {
  /** Kubernetes label selector over the leases. */
  filter?: string;
  /** Kubernetes label selector over the lease tags. */
  tagFilter?: string;
  /** Include leases that have ended. Default `false`: the controller hides them. */
  includeEnded?: boolean;
}

/** A token issued by `rotateToken()`. */
export interface RotatedToken {
  /** The new bearer token, which the client already uses for later calls. */
  token: string;
  /** Expiry that the controller reported, when it reported one. */
  expiresAt: Date | undefined;
}

/**
 * Client of the Jumpstarter controller's `ClientService`.
 *
 * Every method takes short ids (`"rpi4-01"`) or full resource names, validates its input before
 * sending anything, and accepts a last `{ signal, timeoutMs, headers }` argument. Failures are
 * `JumpstarterError`s. Call `close()` (or use `await using`) to release the connection; a script
 * that does not still exits when its work is done.
 */
export class JumpstarterClient implements AsyncDisposable {
  /** Namespace that the client works in. */
  readonly namespace: string;
  /** Name of the client object, when known. */
  readonly clientName: string | undefined;
  /** Destination of the SDK's log records. */
  readonly logger: Logger;
  /** Default wait for a lease to become ready, in milliseconds: the `leaseTimeoutMs` option, else two hours. */
  readonly leaseTimeoutMs: number;

  readonly #tokens: TokenManager;
  readonly #rpc: Client<typeof ClientService>;
  readonly #runner: CallRunner;
  readonly #closeConnection: () => void;
  readonly #leases: LeaseContext;
  readonly #stopReleaseOnExit: () => void;

  constructor(options: JumpstarterClientOptions) {
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError("missing client options: pass { endpoint, namespace, token }.");
    }
    this.namespace = validateNamespace(requireString(options.namespace, "namespace"));
    const token =
      typeof options.token === "function"
        ? options.token
        : requireString(options.token, "token", "pass the client's bearer token or a token provider, for example from its jmp config file");
    this.clientName = options.clientName === undefined ? undefined : shortId(toResourceName(options.clientName, "clients", this.namespace));
    this.logger = resolveLogger(options.logger);
    this.leaseTimeoutMs = validateTimeoutMs(options.leaseTimeoutMs, "leaseTimeoutMs") ?? DEFAULT_LEASE_TIMEOUT_MS;
    this.#runner = new CallRunner({
      timeoutMs: options.timeoutMs,
      retry: options.retry,
      logger: this.logger,
      tokenExpiresAt: () => this.#tokens.expiresAt,
      retryAfterAuthFailure: (error, context) => this.#tokens.refreshAfterAuthFailure(error, context.get(SENT_TOKEN)),
    });

    const interceptors = [
      createMetadataInterceptor({ namespace: this.namespace, clientName: this.clientName, token: (method) => this.#tokens.token(method) }),
      ...(options.interceptors ?? []),
    ];
    if (options.transport) {
      // A caller-supplied transport ignores `tls` and `connection`, and its owner closes it.
      this.#rpc = createClient(ClientService, withInterceptors(options.transport, interceptors));
      this.#closeConnection = () => {};
    } else {
      const endpoint = parseEndpoint(options.endpoint ?? "", { allowInsecureTransport: options.allowInsecureTransport });
      const connection = createConnection(endpoint, options.tls, interceptors, options.connection);
      this.#rpc = createClient(ClientService, connection.transport);
      this.#closeConnection = connection.close;
    }

    this.#leases = {
      rpc: this,
      namespace: this.namespace,
      clientName: this.clientName,
      logger: this.logger,
      clock: options.clock ?? systemClock,
      leaseTimeoutMs: this.leaseTimeoutMs,
      callTimeoutMs: this.#runner.defaultTimeoutMs,
      closedSignal: this.#runner.closedSignal,
      held: new Set(),
    };
    const releaseOnExit = options.releaseOnExit;
    this.#stopReleaseOnExit = releaseOnExit
      ? registerReleaseOnExit(this.#leases.held, this.logger, releaseOnExit === true ? {} : releaseOnExit)
      : () => {};

    // Created last: its renewal timer must not start for a client whose options were rejected.
    this.#tokens = new TokenManager({
      token,
      rotate: () => this.#sendRotateToken(undefined),
      onTokenRotated: options.onTokenRotated,
      rotation: options.tokenRotation,
      store: (options as { [TOKEN_STORE]?: TokenStore })[TOKEN_STORE],
      logger: this.logger,
    });
  }

  /**
   * Creates a client from the configuration that `jmp` writes, `clients/<alias>.yaml` in
   * `$JMP_CLIENT_CONFIG_HOME`, `$XDG_CONFIG_HOME/jumpstarter` or `~/.config/jumpstarter`. With no
   * alias, it uses the environment (`JMP_NAMESPACE`, `JMP_NAME`, `JMP_ENDPOINT`, `JMP_TOKEN`) or
   * the current client of `config.yaml`. Rotated tokens are written back to the file unless
   * `writeBack: false`. See `loadClientConfig` for every rule.
   *
   * @throws ConfigError naming the file and the key when the configuration is missing or invalid.
   */
  static async fromConfig(options: FromConfigOptions = {}): Promise<JumpstarterClient> {
    return createClientFromConfig(options, (clientOptions) => new JumpstarterClient(clientOptions));
  }

  /** Expiry of the token in use, when known from its `exp` claim, RotateToken or the provider. */
  get tokenExpiresAt(): Date | undefined {
    return this.#tokens.expiresAt;
  }

  /**
   * Reads one exporter.
   *
   * @param name short id (`rpi4-01`) or `namespaces/{ns}/exporters/{id}`.
   * @throws NotFoundError when no such exporter exists.
   */
  async getExporter(name: string, options?: GetExporterOptions): Promise<Exporter> {
    const resource = toResourceName(name, "exporters", this.namespace);
    return this.#runner.run({ operation: "get exporter", resource, idempotent: true }, options, (call) =>
      this.#rpc.getExporter({ name: resource, showHiddenLabels: options?.showHiddenLabels ?? false }, call),
    );
  }

  /**
   * Lists the exporters of the namespace, lazily and page by page. See {@link PagedIterable}.
   *
   * @throws InvalidArgumentError at once for a malformed filter or page size.
   */
  listExporters(query: ExporterQuery = {}, options?: CallOptions): PagedIterable<Exporter> {
    const filter = validateFilter(query.filter, "filter");
    const showHiddenLabels = query.showHiddenLabels ?? false;
    const parent = `namespaces/${this.namespace}`;
    // Each page is one retried call, so a failure in the middle resumes from the page it was fetching.
    const context = { operation: "list exporters", resource: parent, idempotent: true };
    return new PagedIterable(
      async ({ pageToken, pageSize, signal }) => {
        const request = create(ListExportersRequestSchema, { parent, pageSize, pageToken, filter, showHiddenLabels });
        const response = await this.#runner.run(context, withSignal(options, signal), (call) => this.#rpc.listExporters(request, call));
        return { items: response.exporters, nextPageToken: response.nextPageToken };
      },
      query,
      "exporters",
    );
  }

  /**
   * Reads one lease of this client.
   *
   * @param name lease id or `namespaces/{ns}/leases/{id}`.
   * @throws NotFoundError when no such lease exists.
   */
  async getLease(name: string, options?: CallOptions): Promise<Lease> {
    const resource = toResourceName(name, "leases", this.namespace);
    return this.#runner.run({ operation: "get lease", resource, idempotent: true }, options, (call) => this.#rpc.getLease({ name: resource }, call));
  }

  /**
   * Lists this client's leases, lazily and page by page. Ended leases are left out unless
   * `includeEnded` is set.
   *
   * @throws InvalidArgumentError at once for a malformed filter, tag filter or page size.
   */
  listLeases(query: LeaseQuery = {}, options?: CallOptions): PagedIterable<Lease> {
    const filter = validateFilter(query.filter, "filter");
    const tagFilter = validateFilter(query.tagFilter, "tagFilter");
    // Unset lets the controller apply its default, which hides ended leases, and `false` requests all of them.
    const onlyActive = query.includeEnded === true ? false : undefined;
    const parent = `namespaces/${this.namespace}`;
    const context = { operation: "list leases", resource: parent, idempotent: true };
    return new PagedIterable(
      async ({ pageToken, pageSize, signal }) => {
        const request = create(ListLeasesRequestSchema, { parent, pageSize, pageToken, filter, tagFilter, onlyActive });
        const response = await this.#runner.run(context, withSignal(options, signal), (call) => this.#rpc.listLeases(request, call));
        return { items: response.leases, nextPageToken: response.nextPageToken };
      },
      query,
      "leases",
    );
  }

  /**
   * Creates a lease. It returns at once, usually before an exporter is assigned: the lease is
   * `Pending` until the controller marks it `Ready`.
   *
   * @throws InvalidArgumentError, before any RPC, for an invalid spec.
   */
  async createLease(spec: LeaseSpec, options?: CallOptions): Promise<Lease> {
    const request = buildCreateLeaseRequest(spec, this.namespace);
    const resource = request.leaseId ? formatResourceName(this.namespace, "leases", request.leaseId) : request.parent;
    // With a lease id, a second CreateLease cannot make a second lease, so it is safe to retry.
    // NOTE: when a retried CreateLease meets its own lease from an attempt whose response was lost,
    // it raises AlreadyExistsError; getLease(leaseId) then returns that lease.
    const idempotent = request.leaseId !== "";
    return this.#runner.run({ operation: "create lease", resource, idempotent }, options, (call) => this.#rpc.createLease(request, call));
  }

  /**
   * Changes a lease's times or transfers it to another client. The update mask lists exactly the
   * fields given in `changes`.
   *
   * @throws InvalidArgumentError, before any RPC, when `changes` is empty or invalid.
   */
  async updateLease(name: string, changes: LeaseChanges, options?: CallOptions): Promise<Lease> {
    const request = buildUpdateLeaseRequest(name, changes, this.namespace);
    const resource = request.lease!.name;
    return this.#runner.run({ operation: "update lease", resource }, options, (call) => this.#rpc.updateLease(request, call));
  }

  /**
   * Releases a lease: the controller ends it and frees its exporter.
   *
   * @throws FailedPreconditionError when the lease was already released. A retried attempt that
   *   finds it released succeeds instead, because that is how a lost response to an earlier
   *   attempt looks.
   */
  async deleteLease(name: string, options?: CallOptions): Promise<void> {
    const resource = toResourceName(name, "leases", this.namespace);
    const context = { operation: "delete lease", resource, idempotent: true, recoverAfterRetry: releasedByEarlierAttempt };
    await this.#runner.run(context, options, async (call) => {
      await this.#rpc.deleteLease({ name: resource }, call);
    });
  }

  /**
   * Asks the controller for a new token and uses it for every later call, or joins an automatic
   * rotation in flight. The old token keeps working until it expires. `onTokenRotated` is awaited,
   * and a client from a config file writes the token back to the file. Other callers must persist
   * the returned token, or it is lost when the process exits.
   * Polls a lease until it is `Ready=True` and resolves with it: the first poll within 250 ms, then
   * exponentially less often, with jitter, up to every `maxDelayMs` (5 s). UNAVAILABLE and broken
   * connections are reported to `onProgress` and outlasted.
   *
   * @throws LeaseUnsatisfiableError, LeaseInvalidError or LeaseEndedError when the lease's conditions report that state.
   * @throws LeaseTimeoutError after `timeoutMs` (default: the client's `leaseTimeoutMs`, two hours).
   * @throws the signal's reason when `signal` aborts.
   */
  async waitForLease(name: string, options?: WaitForLeaseOptions): Promise<Lease> {
    return waitForLease(this.#leases, name, options);
  }

  /**
   * Creates a lease, waits until it is ready as {@link JumpstarterClient.waitForLease} does, and returns a handle that
   * releases it; `await using lease = await client.acquireLease(...)` releases it at the end of the
   * scope. The lease id is a client-generated UUIDv7, so a create repeated after a lost response
   * takes over the lease it made instead of making a second one. When the wait fails for any
   * reason (timeout, abort, unsatisfiable, error), the lease is deleted before the error is rethrown.
   *
   * @throws InvalidArgumentError before any RPC for an invalid spec or option, and the errors of `waitForLease`.
   */
  async acquireLease(request: AcquireLeaseRequest): Promise<LeaseHandle> {
    return acquireLease(this.#leases, request);
  }

  /**
   * Acquires a lease, runs `fn` with it, and releases it however `fn` ends: return, throw or abort.
   * When `fn` throws, its error is rethrown and a failed release goes to the logger and
   * `onReleaseError`; when `fn` returns, a failed release rejects.
   */
  async withLease<T>(request: AcquireLeaseRequest, fn: (lease: LeaseHandle) => Promise<T> | T): Promise<T> {
    return withLease(this.#leases, request, fn);
  }

  /**
   * Returns a handle for an existing lease of this client, such as one named by `JMP_LEASE`, once it
   * is ready.
   *
   * @throws LeaseEndedError when it has ended, PermissionDeniedError when another client holds it.
   */
  async attachLease(name: string, options?: AttachLeaseOptions): Promise<LeaseHandle> {
    return attachLease(this.#leases, name, options);
  }

  /**
   * Asks the controller for a new token and uses it for every later call. The old token keeps
   * working until it expires. Persist the returned token, or it is lost when the process exits.
   */
  async rotateToken(options?: CallOptions): Promise<RotatedToken> {
    return this.#tokens.rotateNow(() => this.#sendRotateToken(options));
  }

  async #sendRotateToken(options: CallOptions | undefined): Promise<RotatedToken> {
    // The controller takes the namespace as parent and finds the client from the token.
    const parent = `namespaces/${this.namespace}`;
    const response = await this.#runner.run({ operation: "rotate token", resource: parent }, options, (call) =>
      this.#rpc.rotateToken({ parent }, call),
    );
    return { token: response.token, expiresAt: response.expiry ? timestampDate(response.expiry) : undefined };
  }

  /**
   * Closes the client: calls in flight reject with `ClientClosedError`, as do later calls, and the
   * connection closes. Calling it again does nothing.
   */
  async close(): Promise<void> {
    this.#tokens.close();
    this.#stopReleaseOnExit();
    this.#runner.close();
    this.#closeConnection();
  }

  /** Closes the client, for `await using client = new JumpstarterClient(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Describes the client without its token. */
  toJSON(): Record<string, unknown> {
    return { namespace: this.namespace, clientName: this.clientName };
  }
}

function requireString(value: unknown, what: string, hint = `pass ${what} as a non-empty string`): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(`missing ${what}: ${hint}.`);
  }
  return value;
}

function validateFilter(filter: string | undefined, what: string): string {
  if (filter === undefined) return "";
  if (typeof filter !== "string") {
    throw new InvalidArgumentError(`invalid ${what}: expected a label-selector string such as "board=rpi4", got ${typeof filter}.`);
  }
  parseSelector(filter);
  return filter;
}

// A retried DeleteLease whose first attempt released the lease, with the response lost, gets the
// controller's FAILED_PRECONDITION `lease "<name>" has already been released`: the release worked.
function releasedByEarlierAttempt(error: JumpstarterError): Promise<void> | undefined {
  const released = error instanceof FailedPreconditionError && /has already been released/i.test(error.rawMessage);
  return released ? Promise.resolve() : undefined;
}

function withSignal(options: CallOptions | undefined, iterationSignal: AbortSignal): CallOptions {
  const signal = options?.signal ? AbortSignal.any([options.signal, iterationSignal]) : iterationSignal;
  return { ...options, signal };
}
