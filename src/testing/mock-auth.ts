import { randomBytes, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT, errors as joseErrors, jwtVerify } from "jose";
import { namespaceMismatch } from "./mock-names.js";

/** `iss` claim of every token that the mock controller signs. */
export const MOCK_TOKEN_ISSUER = "https://jumpstarter.mock";

/** `aud` claim of every token that the mock controller signs. */
export const MOCK_TOKEN_AUDIENCE = "jumpstarter";

/** Client identity that a verified token carries in its `sub` claim. */
export interface MockCaller {
  namespace: string;
  clientName: string;
}

/** Input of {@link MockTokenAuthority.issue}. */
export interface MockTokenRequest {
  namespace: string;
  clientName: string;
  /** Time from `issuedAt` to expiry in ms. Zero or negative gives an already-expired token. */
  lifetimeMs: number;
  issuedAt: Date;
}

/** A signed token and the expiry written into its `exp` claim. */
export interface MockIssuedToken {
  token: string;
  expiresAt: Date;
}

const SUBJECT = /^namespaces\/([^/]+)\/clients\/([^/]+)$/;

/**
 * Signs and verifies the HS256 JWTs of the mock controller.
 *
 * Tokens carry `sub: namespaces/{namespace}/clients/{client}`, `iss`, `aud`, `iat`, `exp` and a
 * random `jti`, so two tokens issued in the same second differ. Expiry is checked against the
 * injected clock, not the system clock.
 */
export class MockTokenAuthority {
  private readonly key: Uint8Array;

  constructor(
    signingKey: Uint8Array,
    private readonly now: () => Date,
  ) {
    this.key = signingKey;
  }

  /** Signs a token for the client. `exp` is `issuedAt + lifetimeMs`, rounded down to seconds. */
  async issue(request: MockTokenRequest): Promise<MockIssuedToken> {
    const issuedAtSeconds = Math.floor(request.issuedAt.getTime() / 1000);
    const expiresAtSeconds = Math.floor((request.issuedAt.getTime() + request.lifetimeMs) / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(`namespaces/${request.namespace}/clients/${request.clientName}`)
      .setIssuer(MOCK_TOKEN_ISSUER)
      .setAudience(MOCK_TOKEN_AUDIENCE)
      .setIssuedAt(issuedAtSeconds)
      .setExpirationTime(expiresAtSeconds)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresAt: new Date(expiresAtSeconds * 1000) };
  }

  /**
   * Authenticates the request headers and returns the caller.
   *
   * The checks run in the controller's order, and each failure has the controller's status code:
   * - no `authorization` header: UNAUTHENTICATED.
   * - several headers, or a value other than `Bearer <token>`: INVALID_ARGUMENT.
   * - not a JWT, a bad signature, or the wrong issuer, audience or subject: UNAUTHENTICATED.
   * - an expired token: UNKNOWN, with `token is expired` in the message.
   * - a `jumpstarter-namespace` header other than the token's namespace: PERMISSION_DENIED.
   */
  async authenticate(headers: Headers): Promise<MockCaller> {
    const authorization = headers.get("authorization");
    if (authorization === null) {
      throw new ConnectError("missing authorization header", Code.Unauthenticated);
    }
    // Headers joins repeated fields with ", ", and a JWT never contains a comma.
    if (authorization.includes(",")) {
      throw new ConnectError("multiple authorization headers", Code.InvalidArgument);
    }
    const match = /^Bearer (\S+)$/.exec(authorization);
    if (match === null) {
      throw new ConnectError("malformed authorization header", Code.InvalidArgument);
    }

    const caller = await this.verify(match[1]!);
    const headerNamespace = headers.get("jumpstarter-namespace");
    if (headerNamespace !== null && headerNamespace !== caller.namespace) {
      throw namespaceMismatch();
    }
    return caller;
  }

  private async verify(token: string): Promise<MockCaller> {
    let subject: string | undefined;
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ["HS256"],
        issuer: MOCK_TOKEN_ISSUER,
        audience: MOCK_TOKEN_AUDIENCE,
        currentDate: this.now(),
        requiredClaims: ["exp", "sub"],
      });
      subject = payload.sub;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) {
        // The controller's JWT library reports expiry with this text, and the controller sends it
        // as UNKNOWN rather than UNAUTHENTICATED.
        throw new ConnectError("token has invalid claims: token is expired", Code.Unknown);
      }
      if (error instanceof joseErrors.JOSEError) {
        throw new ConnectError(`invalid token: ${error.message}`, Code.Unauthenticated);
      }
      throw error;
    }

    const match = SUBJECT.exec(subject ?? "");
    if (match === null) {
      throw new ConnectError(
        `invalid token: subject "${subject}" is not "namespaces/{namespace}/clients/{client}"`,
        Code.Unauthenticated,
      );
    }
    return { namespace: match[1]!, clientName: match[2]! };
  }
}

/**
 * Converts a signing key option to HS256 key bytes. A string is used as UTF-8 text. Without a key
 * the result is 32 random bytes, so tokens from one mock controller do not verify on another.
 */
export function signingKeyBytes(signingKey?: string | Uint8Array): Uint8Array {
  if (signingKey === undefined) return new Uint8Array(randomBytes(32));
  if (typeof signingKey === "string") return new TextEncoder().encode(signingKey);
  return signingKey;
}
