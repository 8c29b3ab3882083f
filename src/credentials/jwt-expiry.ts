import { decodeJwt } from "jose";

/** Times read from a token's claims. A field is `undefined` when the token does not carry it. */
export interface TokenTimes {
  /** The `exp` claim: when the token stops working. */
  expiresAt: Date | undefined;
  /** The `iat` claim: when the token was issued. */
  issuedAt: Date | undefined;
}

/**
 * Reads the `exp` and `iat` claims of a JWT without verifying its signature, because the SDK has no
 * key and only needs to know when to rotate. A token that is not a JWT, or whose claims are not
 * numbers, yields `undefined` times rather than an error: such a token is used as it is but never
 * rotated automatically.
 */
export function readTokenTimes(token: string): TokenTimes {
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(token);
  } catch {
    return { expiresAt: undefined, issuedAt: undefined };
  }
  return { expiresAt: secondsToDate(claims.exp), issuedAt: secondsToDate(claims.iat) };
}

function secondsToDate(value: unknown): Date | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  return new Date(value * 1000);
}
