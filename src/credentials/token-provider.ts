import { UnauthenticatedError, isJumpstarterError } from "../errors.js";

/** Argument that the SDK passes to a {@link TokenProvider}. */
export interface TokenRequest {
  /**
   * `true` when the controller has just rejected the token the provider returned last, so the
   * provider should skip its cache and fetch a new one. `false` on every other call.
   */
  forceRefresh: boolean;
}

/** A token from a {@link TokenProvider}, with its expiry when the provider has it. */
export interface ProvidedToken {
  token: string;
  /** When the token stops working. Default: the JWT's `exp` claim, if the token is a JWT that has one. */
  expiresAt?: Date;
}

/**
 * Source of the client's bearer token for setups that manage tokens themselves, such as OIDC. The
 * SDK calls it for the first token, again when the token nears expiry, and with
 * `forceRefresh: true` when the controller rejects the token as expired or unauthenticated.
 */
export type TokenProvider = (request: TokenRequest) => string | ProvidedToken | Promise<string | ProvidedToken>;

/**
 * Calls a token provider and checks what it returned.
 *
 * @throws UnauthenticatedError when the provider fails or returns no usable token; the
 *   provider's error is kept as `cause`.
 */
export async function requestProvidedToken(provider: TokenProvider, forceRefresh: boolean): Promise<ProvidedToken> {
  let result: string | ProvidedToken;
  try {
    result = await provider({ forceRefresh });
  } catch (error) {
    if (isJumpstarterError(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnauthenticatedError(`the token provider failed: ${reason}. Check the provider's credentials and its identity service.`, {
      cause: error,
      retryable: true,
    });
  }

  const provided = typeof result === "string" ? { token: result } : result;
  if (provided === null || typeof provided !== "object" || typeof provided.token !== "string" || provided.token.length === 0) {
    throw new UnauthenticatedError("the token provider returned no token: it must return a non-empty string or { token, expiresAt }.");
  }
  const expiresAt = provided.expiresAt;
  if (expiresAt !== undefined && (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime()))) {
    throw new UnauthenticatedError("the token provider returned an invalid expiresAt: it must be a valid Date or left out.");
  }
  return { token: provided.token, expiresAt };
}
