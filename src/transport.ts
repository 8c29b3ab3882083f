import { create } from "@bufbuild/protobuf";
import { createContextValues, type Interceptor, type Transport, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { isIP } from "node:net";
import { InvalidArgumentError } from "./errors.js";

type UnaryFn = (request: UnaryRequest) => Promise<UnaryResponse>;

/** TLS settings for a controller endpoint. */
export interface TlsOptions {
  /** PEM-encoded CA certificates to trust, for a controller with a private CA. Default: the system's CAs. */
  ca?: string | Buffer;
  /**
   * Skip verification of the server certificate. The connection stays encrypted but is open to
   * impersonation; use it only for test setups. Default `false`.
   */
  insecure?: boolean;
}

/** Parsed form of a controller endpoint. */
export interface ParsedEndpoint {
  /** URL that the transport connects to, such as `https://controller.lab:443`. */
  baseUrl: string;
  /** Whether the connection uses TLS. */
  secure: boolean;
  /** Host name without port or brackets. */
  host: string;
}

/**
 * Parses a controller endpoint. `host:port` means TLS, as `jmp` config files write it, and so does
 * `https://host[:port]`. `http://host[:port]` is plaintext HTTP/2. It is accepted for loopback hosts
 * only unless `allowInsecureTransport` is set, because the bearer token would cross the network in
 * clear text.
 *
 * @throws InvalidArgumentError for a malformed endpoint or a refused plaintext one.
 */
export function parseEndpoint(endpoint: string, options: { allowInsecureTransport?: boolean } = {}): ParsedEndpoint {
  if (typeof endpoint !== "string" || endpoint.trim() === "") {
    throw new InvalidArgumentError(
      'missing endpoint: pass the controller address as "host:port" (TLS), "https://host:port" or, for a local controller, "http://127.0.0.1:port".',
    );
  }

  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint);
  let url: URL;
  try {
    url = new URL(hasScheme ? endpoint : `https://${endpoint}`);
  } catch {
    throw new InvalidArgumentError(`invalid endpoint "${endpoint}": expected "host:port", "https://host:port" or "http://host:port".`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidArgumentError(`invalid endpoint "${endpoint}": the scheme must be https or http, got "${url.protocol.slice(0, -1)}".`);
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new InvalidArgumentError(`invalid endpoint "${endpoint}": give only a scheme, a host and a port, with no path, query or credentials.`);
  }

  const secure = url.protocol === "https:";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!secure && !options.allowInsecureTransport && !isLoopbackHost(host)) {
    throw new InvalidArgumentError(
      `refusing plaintext endpoint "${endpoint}": the bearer token would cross the network unencrypted. Use "https://${url.host}" or "${url.host}" for TLS, or set allowInsecureTransport: true if the network is trusted.`,
    );
  }
  return { baseUrl: `${url.protocol}//${url.host}`, secure, host };
}

/** Tells whether `host` is a loopback name or address: `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (bare === "localhost" || bare.endsWith(".localhost")) return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || bare === "0:0:0:0:0:0:0:1" || /^::ffff:127\./.test(bare);
  return false;
}

/** Settings of the HTTP/2 connection. */
export interface ConnectionOptions {
  /**
   * Interval of HTTP/2 PING frames that detect a dead connection, in milliseconds. Default 20,000
   * (as `jmp`). PINGs go out while calls are open. A connection left idle for longer is checked
   * with a PING before its next call, and replaced if no reply comes.
   */
  keepaliveIntervalMs?: number;
  /** Time to wait for a PING reply before the connection is dropped, in milliseconds. Default 15,000. */
  keepaliveTimeoutMs?: number;
  /** Close the connection after this long without a call, in milliseconds. Default 300,000 (5 minutes). */
  idleTimeoutMs?: number;
}

/** The HTTP/2 connection and the transport that uses it. */
export interface ClientConnection {
  transport: Transport;
  /** Closes the connection and every open stream. */
  close(): void;
}

/**
 * Creates the gRPC transport of one client: one HTTP/2 connection, multiplexed, kept alive with
 * PING frames and replaced on the next call when the server closes it.
 */
export function createConnection(
  endpoint: ParsedEndpoint,
  tls: TlsOptions | undefined,
  interceptors: Interceptor[],
  options: ConnectionOptions = {},
): ClientConnection {
  const nodeOptions = endpoint.secure
    ? {
        ...(tls?.ca === undefined ? {} : { ca: tls.ca }),
        rejectUnauthorized: tls?.insecure !== true,
        ALPNProtocols: ["h2"],
      }
    : {};
  const sessionManager = new Http2SessionManager(
    endpoint.baseUrl,
    {
      pingIntervalMs: options.keepaliveIntervalMs ?? 20_000,
      pingTimeoutMs: options.keepaliveTimeoutMs ?? 15_000,
      idleConnectionTimeoutMs: options.idleTimeoutMs ?? 300_000,
    },
    nodeOptions,
  );
  const transport = createGrpcTransport({
    baseUrl: endpoint.baseUrl,
    sessionManager,
    interceptors,
  });
  return {
    transport,
    close: () => sessionManager.abort(),
  };
}

/**
 * Wraps a ready transport so that every unary call runs through `interceptors` first, in order.
 * connect fixes a transport's interceptors when it is created, so a transport that a caller
 * passes in needs this to carry the SDK's authentication headers.
 */
export function withInterceptors(transport: Transport, interceptors: Interceptor[]): Transport {
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const send: UnaryFn = (request) =>
        transport.unary(method, request.signal, timeoutMs, request.header, request.message as never, request.contextValues) as never;
      const chain = interceptors.reduceRight<UnaryFn>((next, interceptor) => interceptor(next as never) as UnaryFn, send);
      return chain({
        stream: false,
        service: method.parent,
        method,
        requestMethod: "POST",
        url: "",
        signal: signal ?? new AbortController().signal,
        header: new Headers(header),
        contextValues: contextValues ?? createContextValues(),
        message: create(method.input, input),
      }) as never;
    },
    // ClientService has no streaming methods, so streams pass through unchanged.
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, header, input, contextValues),
  };
}
