import { FailedPreconditionError, NotFoundError } from "../errors.js";
import { isLeaseEnded } from "../lease-status.js";
import type { LeaseContext } from "./context.js";
import { isTransientError, pollDelayMs } from "./wait.js";

/** Time that one release may take, retries included, in milliseconds. */
export const RELEASE_TIMEOUT_MS = 30_000;

/** Outcome of {@link releaseLease}. */
export type ReleaseResult = "released" | "already-released" | "ended" | "not-found";

/**
 * Releases a lease with DeleteLease, and treats every state in which the lease holds nothing as
 * success: released before (FAILED_PRECONDITION "has already been released"), ended, or gone.
 *
 * It takes no signal, so that a caller's abort cannot leave the lease held. Transient failures
 * (UNAVAILABLE, a broken connection) are retried with backoff, and the whole release is bounded
 * by {@link RELEASE_TIMEOUT_MS}.
 *
 * @throws the last error when the lease could not be released in time, or at once for a
 *   permanent error such as PERMISSION_DENIED or a closed client.
 */
export async function releaseLease(context: LeaseContext, name: string): Promise<ReleaseResult> {
  const { clock } = context;
  const deadline = clock.now() + RELEASE_TIMEOUT_MS;

  for (let attempt = 0; ; attempt++) {
    const remainingMs = deadline - clock.now();
    try {
      await context.rpc.deleteLease(name, { timeoutMs: Math.max(1, Math.min(context.callTimeoutMs, remainingMs)), retry: false });
      context.logger.debug("released the lease", { lease: name });
      return "released";
    } catch (error) {
      if (error instanceof NotFoundError) return "not-found";
      if (error instanceof FailedPreconditionError) {
        if (/already been released/i.test(error.rawMessage)) return "already-released";
        if (await hasEnded(context, name)) return "ended";
        throw error;
      }

      const delayMs = pollDelayMs(attempt, clock.random());
      if (!isTransientError(error) || clock.now() + delayMs >= deadline) throw error;
      context.logger.warn("releasing the lease failed; retrying", { lease: name, error: error.message, retryInMs: delayMs });
      await clock.sleep(delayMs, { signal: context.closedSignal });
    }
  }
}

// A failed read leaves the result unknown, so the caller reports the original error instead.
async function hasEnded(context: LeaseContext, name: string): Promise<boolean> {
  try {
    return isLeaseEnded(await context.rpc.getLease(name));
  } catch {
    return false;
  }
}
