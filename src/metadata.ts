import { createContextKey, type Interceptor } from "@connectrpc/connect";

/** Header names that the controller reads to identify the caller. */
export const HEADER_AUTHORIZATION = "authorization";
/** Kind of the caller; clients send `Client`. */
export const HEADER_KIND = "jumpstarter-kind";
/** Namespace of the caller. */
export const HEADER_NAMESPACE = "jumpstarter-namespace";
/** Name of the caller, sent when it is known. */
export const HEADER_NAME = "jumpstarter-name";

/**
 * Context value in which the interceptor records the token that a call was sent with, so that
 * after an authentication failure the client can tell whether a newer token exists.
 */
export const SENT_TOKEN = createContextKey<string | undefined>(undefined, { description: "token the call was sent with" });

/** Identity that {@link createMetadataInterceptor} sends with every call. */
export interface CallerIdentity {
  namespace: string;
  clientName?: string;
  /**
   * Returns the bearer token for the next call to `method` (such as `RotateToken`); it may wait
   * for a rotation in progress.
   */
  token(method: string): string | Promise<string>;
}

/**
 * Creates the interceptor that adds the authentication and identity headers to every call. It
 * sets them last, so a caller's `headers` option cannot replace them by accident.
 */
export function createMetadataInterceptor(identity: CallerIdentity): Interceptor {
  return (next) => async (request) => {
    // A call that waits for a token rotation still ends at its deadline or when it is cancelled.
    const token = await untilAborted(identity.token(request.method.name), request.signal);
    request.header.set(HEADER_AUTHORIZATION, `Bearer ${token}`);
    request.contextValues.set(SENT_TOKEN, token);
    request.header.set(HEADER_KIND, "Client");
    request.header.set(HEADER_NAMESPACE, identity.namespace);
    if (identity.clientName) request.header.set(HEADER_NAME, identity.clientName);
    return next(request);
  };
}

function untilAborted<T>(value: T | Promise<T>, signal: AbortSignal): T | Promise<T> {
  if (!(value instanceof Promise)) return value;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    value.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
