import { Code } from "@connectrpc/connect";
import { isJumpstarterError } from "../errors.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Default of `tokenRotation.renewBeforeMs`: renew a token 30 days before it expires, in
 * milliseconds. {@link renewalThresholdMs} shortens it for tokens that live less than 60 days.
 */
export const DEFAULT_RENEW_BEFORE_MS = 30 * DAY_MS;

/**
 * Remaining lifetime, in milliseconds, under which calls wait for a new token instead of going on
 * with the current one: 30 seconds, enough for the call to reach the controller before expiry.
 */
export const TOKEN_EXPIRY_MARGIN_MS = 30_000;

/** Default delay before the first retry of a failed renewal, in milliseconds; it doubles per failure. */
export const DEFAULT_RETRY_DELAY_MS = 5_000;

/** Default cap of the delay between renewal retries, in milliseconds (5 minutes). */
export const DEFAULT_MAX_RETRY_DELAY_MS = 5 * 60_000;

/**
 * Returns how long before expiry a token is renewed, in milliseconds: `renewBeforeMs`, but never
 * more than half the token's lifetime from `issuedAt` to `expiresAt`. A year-long token is thus
 * renewed 30 days ahead and an hour-long one after 30 minutes, instead of at once.
 */
export function renewalThresholdMs(times: { issuedAt: Date; expiresAt: Date }, renewBeforeMs = DEFAULT_RENEW_BEFORE_MS): number {
  const lifetimeMs = Math.max(0, times.expiresAt.getTime() - times.issuedAt.getTime());
  return Math.min(renewBeforeMs, lifetimeMs / 2);
}

/**
 * Returns the delay before retry number `failures` (1 for the first) of a failed renewal, in
 * milliseconds: `initialMs` doubled per earlier failure up to `maxMs`, then jittered into its upper
 * half so that many clients that failed together do not retry together.
 */
export function retryDelayMs(failures: number, options: { initialMs: number; maxMs: number; random: () => number }): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const capped = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(capped / 2 + (options.random() * capped) / 2);
}

// Codes under which the same RotateToken call may succeed later. Anything else, such as INTERNAL
// "failed to get credential secret" for a client without a token secret, fails the same way again.
const TRANSIENT_CODES = new Set<Code>([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);

/**
 * Tells whether a failed renewal is worth retrying. SDK errors are judged by their code and
 * `retryable` flag. Any other error comes from a user's token provider (a network error while
 * fetching an OIDC token, say) and counts as transient.
 */
export function isTransientRenewalFailure(error: unknown): boolean {
  if (!isJumpstarterError(error)) return true;
  return error.retryable || TRANSIENT_CODES.has(error.code);
}
