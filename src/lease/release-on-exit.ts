import { InvalidArgumentError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { HeldLease } from "./context.js";

/** Settings of the client option `releaseOnExit`. */
export interface ReleaseOnExitOptions {
  /**
   * Time that releasing may take after the signal, in milliseconds; the process then exits even
   * if some releases are still in flight. Default 5,000, which fits in the 10 s that `docker stop`
   * and many CI runners wait between SIGTERM and SIGKILL.
   */
  timeoutMs?: number;
}

/** Default of {@link ReleaseOnExitOptions.timeoutMs}, in milliseconds. */
export const DEFAULT_RELEASE_ON_EXIT_TIMEOUT_MS = 5_000;

const EXIT_SIGNALS = ["SIGINT", "SIGTERM"] as const;

interface Registration {
  held: Set<HeldLease>;
  timeoutMs: number;
  logger: Logger;
}

// One pair of signal handlers serves every client of the process that opted in.
const registrations = new Set<Registration>();
let installed = false;

/**
 * Releases the leases in `held` when the process receives SIGINT or SIGTERM, and then lets the
 * signal do what it would have done without this handler.
 *
 * On the signal, the handlers are removed first, so a second Ctrl-C ends the process at once.
 * Every lease is released in parallel, for at most `timeoutMs`. Then the signal is raised again,
 * which ends the process as the default action does, unless the application has its own handler
 * for that signal: it has already run, and the process goes on as it decides. A handler that
 * calls `process.exit()` ends the process before the releases finish.
 *
 * @returns a function that removes the registration, as `client.close()` does.
 */
export function registerReleaseOnExit(held: Set<HeldLease>, logger: Logger, options: ReleaseOnExitOptions = {}): () => void {
  const timeoutMs = options.timeoutMs ?? DEFAULT_RELEASE_ON_EXIT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidArgumentError(`invalid releaseOnExit.timeoutMs ${String(timeoutMs)}: expected a positive number of milliseconds.`);
  }
  const registration: Registration = { held, timeoutMs, logger };
  registrations.add(registration);
  setInstalled(true);
  return () => {
    registrations.delete(registration);
    if (registrations.size === 0) setInstalled(false);
  };
}

function setInstalled(install: boolean): void {
  if (install === installed) return;
  installed = install;
  for (const signal of EXIT_SIGNALS) {
    if (install) process.on(signal, onExitSignal);
    else process.off(signal, onExitSignal);
  }
}

function onExitSignal(signal: NodeJS.Signals): void {
  setInstalled(false);
  const current = [...registrations];
  registrations.clear();
  // Checked now, after removing this handler: the application's own handlers have run or will
  // run for this signal, and raising it again would run them twice.
  const raiseAgain = process.listenerCount(signal) === 0;

  void releaseAll(current, signal).finally(() => {
    if (raiseAgain) process.kill(process.pid, signal);
  });
}

async function releaseAll(current: Registration[], signal: NodeJS.Signals): Promise<void> {
  const timeoutMs = Math.max(0, ...current.map((registration) => registration.timeoutMs));
  const releases = current.flatMap((registration) =>
    [...registration.held].map(async (lease) => {
      registration.logger.info(`received ${signal}; releasing the lease`, { lease: lease.name });
      try {
        await lease.release();
      } catch (error) {
        registration.logger.error(`could not release the lease on ${signal}; it stays held until it ends`, {
          lease: lease.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }),
  );
  if (releases.length === 0) return;

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      for (const registration of current) {
        if (registration.held.size > 0) {
          registration.logger.error(`releasing leases on ${signal} took longer than ${timeoutMs} ms; exiting anyway`, {
            leases: [...registration.held].map((lease) => lease.name),
          });
        }
      }
      resolve();
    }, timeoutMs);
  });
  await Promise.race([Promise.all(releases), timeout]);
  clearTimeout(timer);
}
