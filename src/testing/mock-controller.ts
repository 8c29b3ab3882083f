import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ClientService, type Lease } from "../generated.js";
import { MockTokenAuthority, signingKeyBytes } from "./mock-auth.js";
import type { MockCall, MockMethod } from "./mock-calls.js";
import type { MockExporter, MockExporterSpec } from "./mock-exporters.js";
import { MockFaults, type MockFailure, type MockStall } from "./mock-faults.js";
import type { LeaseRecord } from "./mock-lease-record.js";
import { MockLeaseStore } from "./mock-leases.js";
import { parseObjectName } from "./mock-names.js";
import { MockPaginator } from "./mock-pagination.js";
import { createMockClientService } from "./mock-service.js";

/** Options of {@link startMockController}. */
export interface MockControllerOptions {
  /** Namespace of the exporters and of the default client. Default: `"default"`. */
  namespace?: string;
  /** Name of the client that {@link MockController.token} belongs to. Default: `"test-client"`. */
  clientName?: string;
  /** Exporters registered at start. Default: none. */
  exporters?: readonly MockExporterSpec[];
  /** Time in ms from a lease taking an exporter to Ready. Default: 0, which still waits for a timer tick. */
  readyDelayMs?: number;
  /** Lifetime in ms of the default token and of tokens from RotateToken. Default: one year (365 days). */
  tokenLifetimeMs?: number;
  /** TCP port on 127.0.0.1. Default: 0, an ephemeral port. */
  port?: number;
  /** PEM certificate and key. When set, the server speaks HTTP/2 over TLS (ALPN `h2`) instead of plaintext h2c. */
  tls?: {
    /** PEM certificate chain that the server presents. */
    cert: string;
    /** PEM private key of the certificate. */
    key: string;
  };
  /** Clock for every timestamp, lease time and token expiry. Default: `() => new Date()`. */
  now?: () => Date;
  /** HS256 key for tokens, as UTF-8 text or bytes. Default: 32 random bytes. */
  signingKey?: string | Uint8Array;
}

/** Options of {@link MockController.issueToken}. */
export interface MockTokenOptions {
  /** Default: the controller's `clientName`. */
  clientName?: string;
  /** Default: the controller's namespace. */
  namespace?: string;
  /** Time from `issuedAt` to expiry in ms, where zero or less gives an expired token. Default: the current token lifetime. */
  lifetimeMs?: number;
  /** Value of the `iat` claim. Default: the controller's clock. */
  issuedAt?: Date;
}

/** A lease to create for another client with {@link MockController.createLeaseAs}. */
export interface MockLeaseRequest {
  /** Kubernetes label selector. Default: empty, which needs `exporterName`. */
  selector?: string;
  /** Exporter id to lease instead of, or together with, a selector. */
  exporterName?: string;
  /** Duration in ms. It may be left out when both `beginTime` and `endTime` are set. */
  durationMs?: number;
  /** Requested begin time. Default: none, so the lease begins when it takes an exporter. */
  beginTime?: Date;
  /** Requested end time. Default: none, so the end follows from the begin time and `durationMs`. */
  endTime?: Date;
  /** Lease id. Default: a generated UUIDv7. */
  leaseId?: string;
  /** Default: none. */
  tags?: Record<string, string>;
  /** Whether the lease may take a disabled exporter. Default: false. */
  allowDisabled?: boolean;
}

/** A condition for {@link MockController.setLeaseCondition}. */
export interface MockLeaseCondition {
  type: "Pending" | "Ready" | "Unsatisfiable" | "Invalid";
  status: "True" | "False";
  reason: string;
  /** Default: empty. */
  message?: string;
}

/** Options of {@link MockController.restart}. */
export interface MockRestartOptions {
  /** Time in ms between stopping and listening again, during which connections are refused. Default: 0. */
  downtimeMs?: number;
}

/** A running mock controller and the controls that tests use to shape its state. */
export interface MockController {
  /** `http://127.0.0.1:PORT` for plaintext, or `127.0.0.1:PORT` with `tls`, because a bare host:port means TLS. */
  readonly endpoint: string;
  /** TCP port on 127.0.0.1 that the controller listens on. */
  readonly port: number;
  /** Kubernetes namespace of the controller's exporters, leases and clients. */
  readonly namespace: string;
  /** Name of the default client. */
  readonly clientName: string;
  /** A valid JWT of the default client, with the configured lifetime. */
  readonly token: string;
  /** Every RPC received, oldest first, logged before authentication and faults. */
  readonly calls: readonly MockCall[];
  /** Number of HTTP/2 connections accepted since start, restarts included; one client that multiplexes adds one. */
  readonly connectionsAccepted: number;

  /** Returns the logged calls of one method, oldest first. */
  callsTo(method: MockMethod): MockCall[];
  /** Empties the call log. */
  clearCalls(): void;

  /** Stops the server, drops open connections and cancels every timer. Safe to call more than once. */
  close(): Promise<void>;
  /** Stops the server and drops its connections, then listens again on the same port with the same state. */
  restart(options?: MockRestartOptions): Promise<void>;
  /** Sends HTTP/2 GOAWAY on every open connection. Calls in progress finish, and new connections are accepted. */
  goAway(): void;

  /** Registers an exporter, which waiting leases may then take. Throws when the name exists. */
  addExporter(spec: MockExporterSpec): MockExporter;
  /** Removes an exporter and deletes every lease that was assigned it. Throws when the name is unknown. */
  removeExporter(name: string): void;
  /** Connects (status AVAILABLE, or LEASE_READY while leased) or disconnects (status OFFLINE) an exporter. */
  setExporterOnline(name: string, online: boolean): void;
  /** Returns copies of every exporter, sorted by name. */
  exporters(): MockExporter[];

  /** Sets the time in ms from a lease taking an exporter to Ready, for leases that take one later. */
  setReadyDelay(ms: number): void;
  /** Sets the lifetime in ms of tokens that RotateToken and {@link MockController.issueToken} issue later. */
  setTokenLifetime(ms: number): void;
  /** Signs a token, by default for the default client with the current lifetime. */
  issueToken(options?: MockTokenOptions): Promise<string>;

  /**
   * Creates a lease held by another client of the controller's namespace, and returns it as
   * CreateLease would: before scheduling, so without conditions. Throws the error that CreateLease
   * would return.
   */
  createLeaseAs(clientName: string, request: MockLeaseRequest): Lease;
  /** Ends a lease now as its end time would (Ready=False, reason Expired). Takes an id or a full name. */
  endLease(name: string): void;
  /**
   * Sets a condition on a lease, replacing the one of the same type, without changing how the
   * lease is scheduled. For conditions that the mock does not produce itself, such as `Invalid` or
   * `Unsatisfiable` with reason `NoExporter`. Takes an id or a full name.
   */
  setLeaseCondition(name: string, condition: MockLeaseCondition): void;
  /** Returns every lease of every client, ended ones included, sorted by name. */
  leases(): Lease[];
  /** Returns the leases that have not ended, sorted by name. */
  activeLeases(): Lease[];
  /** Makes every page token issued so far fail with the Kubernetes "continue parameter is too old" error. */
  expirePageTokens(): void;

  /** Makes the next `count` calls of `method` fail with the given code and message. */
  failNext(method: MockMethod, count: number, failure: MockFailure): void;
  /**
   * Makes the next `count` calls of `method` take effect and then fail with the given code and
   * message, as when the response is lost on its way back to the client.
   */
  loseResponseNext(method: MockMethod, count: number, failure: MockFailure): void;
  /** Holds the next `count` calls of `method` for `ms`, or until the call is cancelled when `ms` is not set. */
  stallNext(method: MockMethod, count: number, stall?: MockStall): void;
  /** Adds `ms` of latency to every later call of `method`, or removes it when `ms` is 0. */
  delayAll(method: MockMethod, ms: number): void;
  /** Removes every queued failure and stall and every latency. */
  clearFaults(): void;
}

const ONE_YEAR_MS = 365 * 24 * 60 * 60 * 1000;

/**
 * Starts a mock `jumpstarter.client.v1.ClientService` on 127.0.0.1 and returns it once it listens.
 *
 * The server is a real HTTP/2 gRPC server (plaintext h2c, or TLS when `options.tls` is set) that
 * follows the controller's rules for authentication, names, errors, lease scheduling and lease
 * times. Call {@link MockController.close} when done, which leaves no open handles.
 */
export async function startMockController(options: MockControllerOptions = {}): Promise<MockController> {
  const controller = new RunningMockController(options);
  try {
    await controller.start();
  } catch (error) {
    await controller.close();
    throw error;
  }
  return controller;
}

class RunningMockController implements MockController {
  readonly namespace: string;
  readonly clientName: string;
  readonly calls: MockCall[] = [];
  token = "";
  port: number;
  connectionsAccepted = 0;

  private readonly now: () => Date;
  private readonly tls: { cert: string; key: string } | undefined;
  private tokenLifetimeMs: number;
  private readonly auth: MockTokenAuthority;
  private readonly store: MockLeaseStore;
  private readonly faults = new MockFaults();
  private readonly paginator = new MockPaginator();
  private readonly handler: ReturnType<typeof connectNodeAdapter>;
  private server: http2.Http2Server | http2.Http2SecureServer | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly sockets = new Set<Socket>();
  private closing: Promise<void> | undefined;

  constructor(options: MockControllerOptions) {
    this.namespace = options.namespace ?? "default";
    this.clientName = options.clientName ?? "test-client";
    this.port = options.port ?? 0;
    this.now = options.now ?? (() => new Date());
    this.tls = options.tls;
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? ONE_YEAR_MS;
    this.auth = new MockTokenAuthority(signingKeyBytes(options.signingKey), this.now);
    this.store = new MockLeaseStore(this.namespace, this.now, checkedMs(options.readyDelayMs ?? 0, "readyDelayMs"));
    for (const spec of options.exporters ?? []) this.store.addExporter(spec);

    const service = createMockClientService({
      store: this.store,
      auth: this.auth,
      faults: this.faults,
      paginator: this.paginator,
      calls: this.calls,
      now: this.now,
      tokenLifetimeMs: () => this.tokenLifetimeMs,
    });
    this.handler = connectNodeAdapter({ routes: (router) => router.service(ClientService, service) });
  }

  get endpoint(): string {
    return this.tls === undefined ? `http://127.0.0.1:${this.port}` : `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.token = await this.issueToken();
    await this.listen();
  }

  callsTo(method: MockMethod): MockCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.faults.close();
      this.store.close();
      await this.stopServer();
    })();
    return this.closing;
  }

  async restart(options: MockRestartOptions = {}): Promise<void> {
    this.requireOpen("restart");
    await this.stopServer();
    const downtimeMs = checkedMs(options.downtimeMs ?? 0, "downtimeMs");
    if (downtimeMs > 0) await new Promise((resolve) => setTimeout(resolve, downtimeMs));
    this.requireOpen("restart");
    await this.listen();
  }

  goAway(): void {
    // close() sends GOAWAY, lets the streams in progress finish and then ends the session.
    for (const session of this.sessions) session.close();
  }

  addExporter(spec: MockExporterSpec): MockExporter {
    return this.store.addExporter(spec);
  }

  removeExporter(name: string): void {
    this.store.removeExporter(name);
  }

  setExporterOnline(name: string, online: boolean): void {
    this.store.setExporterOnline(name, online);
  }

  exporters(): MockExporter[] {
    return this.store.exporterSnapshots();
  }

  setReadyDelay(ms: number): void {
    this.store.readyDelayMs = checkedMs(ms, "ready delay");
  }

  setTokenLifetime(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`invalid token lifetime ${ms} ms: expected a finite number`);
    this.tokenLifetimeMs = ms;
  }

  async issueToken(options: MockTokenOptions = {}): Promise<string> {
    const issued = await this.auth.issue({
      namespace: options.namespace ?? this.namespace,
      clientName: options.clientName ?? this.clientName,
      lifetimeMs: options.lifetimeMs ?? this.tokenLifetimeMs,
      issuedAt: options.issuedAt ?? this.now(),
    });
    return issued.token;
  }

  createLeaseAs(clientName: string, request: MockLeaseRequest): Lease {
    this.store.reconcile();
    return this.store.createLease({
      namespace: this.namespace,
      clientName,
      leaseId: request.leaseId,
      selector: request.selector ?? "",
      exporterName: request.exporterName,
      times: { beginTime: request.beginTime, endTime: request.endTime, durationMs: request.durationMs },
      tags: request.tags,
      allowDisabled: request.allowDisabled,
    });
  }

  endLease(name: string): void {
    this.store.expireLease(this.requireLease(name));
  }

  setLeaseCondition(name: string, condition: MockLeaseCondition): void {
    const { type, status, reason, message = "" } = condition;
    this.store.setCondition(this.requireLease(name), type, status, reason, message);
  }

  leases(): Lease[] {
    this.store.reconcile();
    return this.store.leaseSnapshots(false);
  }

  activeLeases(): Lease[] {
    this.store.reconcile();
    return this.store.leaseSnapshots(true);
  }

  expirePageTokens(): void {
    this.paginator.expireAll();
  }

  failNext(method: MockMethod, count: number, failure: MockFailure): void {
    this.faults.failNext(method, count, failure);
  }

  loseResponseNext(method: MockMethod, count: number, failure: MockFailure): void {
    this.faults.loseResponseNext(method, count, failure);
  }

  stallNext(method: MockMethod, count: number, stall: MockStall = {}): void {
    this.faults.stallNext(method, count, stall);
  }

  delayAll(method: MockMethod, ms: number): void {
    this.faults.delayAll(method, ms);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  private requireLease(name: string): LeaseRecord {
    const key = name.includes("/") ? parseObjectName(name, "leases") : { namespace: this.namespace, id: name };
    const lease = this.store.findLease(key.namespace, key.id);
    if (lease === undefined) throw new Error(`lease "${name}" not found in the mock controller`);
    return lease;
  }

  private requireOpen(action: string): void {
    if (this.closing !== undefined) throw new Error(`cannot ${action} the mock controller: it was closed`);
  }

  private async listen(): Promise<void> {
    const server =
      this.tls === undefined
        ? http2.createServer(this.handler)
        : http2.createSecureServer({ cert: this.tls.cert, key: this.tls.key, allowHTTP1: false }, this.handler);

    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    server.on("session", (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      this.connectionsAccepted++;
      session.once("close", () => this.sessions.delete(session));
      // A client that resets its connection is part of what tests exercise, not a server fault.
      session.on("error", () => {});
    });

    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  // Closes the listener and destroys every session and raw connection, so that close() does not
  // wait for clients to disconnect.
  private async stopServer(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;

    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.sessions.clear();
    this.sockets.clear();
    await closed;
  }
}

function checkedMs(ms: number, setting: string): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`invalid ${setting} ${ms} ms: expected a finite number >= 0`);
  return ms;
}
