import { open, rm, stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError } from "../errors.js";

/** Timing of {@link withFileLock}, in milliseconds. */
export interface FileLockOptions {
  /** How long to wait for another holder to release the lock. Default 120,000. */
  waitMs?: number;
  /**
   * How long one lock file may stay unchanged while this process waits before it is taken to be
   * left behind by a process that crashed, and removed. Default 90,000: three times the default
   * 30-second deadline of the RotateToken call that the holder makes. The wait is measured on this
   * process's monotonic clock, so clock skew between hosts that share the file does not matter.
   */
  staleMs?: number;
  /** Interval between attempts to take the lock. Default 50. */
  pollMs?: number;
}

/**
 * Runs `task` while holding `<file>.lock`, a lock file created with O_EXCL. Processes that share a
 * config file thus rotate its token one at a time, and the second one finds the first one's token
 * in the file instead of rotating again. The lock is removed when the task ends.
 *
 * When the lock cannot be created for a reason other than being held (the folder is read-only or
 * gone), the task runs without it, because the write that follows fails and reports that anyway.
 *
 * @throws ConfigError, marked retryable, when another holder keeps the lock longer than `waitMs`.
 */
export async function withFileLock<T>(file: string, task: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const lock = `${file}.lock`;
  const waitMs = options.waitMs ?? 120_000;
  const staleMs = options.staleMs ?? 90_000;
  const pollMs = options.pollMs ?? 50;
  const deadline = performance.now() + waitMs;
  let seen: { identity: string; since: number } | undefined;

  for (;;) {
    const attempt = await tryCreate(lock);
    if (attempt === "created") break;
    if (attempt === "unavailable") return task();

    const identity = await lockIdentity(lock);
    const now = performance.now();
    if (identity !== undefined && identity !== seen?.identity) seen = { identity, since: now };
    // NOTE: two waiters that find the same stale lock may both remove it, and one may then remove
    // the other's new lock. Stale locks only follow a crash during a rotation, so this is rare.
    if (identity !== undefined && now - seen!.since > staleMs) {
      await rm(lock, { force: true });
      continue;
    }
    if (now >= deadline) {
      throw new ConfigError(
        `config file ${file} is locked by another process rotating its token (${lock}); retry later, or remove the lock file if no such process runs.`,
        { file, retryable: true },
      );
    }
    await sleep(pollMs, undefined, { ref: false });
  }

  try {
    return await task();
  } finally {
    await rm(lock, { force: true });
  }
}

async function tryCreate(lock: string): Promise<"created" | "held" | "unavailable"> {
  try {
    const handle = await open(lock, "wx", 0o600);
    try {
      await handle.writeFile(`${process.pid}\n`);
    } finally {
      await handle.close();
    }
    return "created";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EEXIST" ? "held" : "unavailable";
  }
}

// Tells one lock file from the next one at the same path; `undefined` once it is gone.
async function lockIdentity(lock: string): Promise<string | undefined> {
  try {
    const stats = await stat(lock);
    return `${stats.ino}:${stats.mtimeMs}`;
  } catch {
    return undefined;
  }
}
