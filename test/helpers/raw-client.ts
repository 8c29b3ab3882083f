import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ClientService } from "../../src/generated.js";

/** A generated ClientService client over its own HTTP/2 connection, which `close` drops. */
export interface RawClient {
  client: Client<typeof ClientService>;
  close(): void;
}

/** Options of {@link connectRaw}. */
export interface RawClientOptions {
  /** Headers added to every call, such as `authorization` and `jumpstarter-namespace`. */
  headers?: Record<string, string>;
  /** PEM CA certificate that the server's TLS certificate must chain to, for a TLS endpoint. */
  ca?: string;
}

/**
 * Connects the generated client, without the SDK, to an endpoint of the mock controller:
 * `http://host:port` for plaintext, or `host:port` for TLS.
 */
export function connectRaw(endpoint: string, options: RawClientOptions = {}): RawClient {
  const baseUrl = endpoint.startsWith("http://") ? endpoint : `https://${endpoint}`;
  const sessionManager = new Http2SessionManager(
    baseUrl,
    undefined,
    options.ca === undefined ? undefined : { ca: options.ca },
  );
  const addHeaders: Interceptor = (next) => (request) => {
    for (const [name, value] of Object.entries(options.headers ?? {})) request.header.set(name, value);
    return next(request);
  };
  const transport = createGrpcTransport({ baseUrl, sessionManager, interceptors: [addHeaders] });
  return {
    client: createClient(ClientService, transport),
    close: () => sessionManager.abort(),
  };
}

/** Returns the `authorization` and `jumpstarter-namespace` headers that a client sends. */
export function authHeaders(token: string, namespace: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, "jumpstarter-namespace": namespace };
}
