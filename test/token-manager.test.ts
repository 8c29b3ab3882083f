import { Code } from "@connectrpc/connect";
import { UnsecuredJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RotatedToken } from "../src/client.js";
import { retryDelayMs } from "../src/credentials/renewal-schedule.js";
import { TokenManager, type TokenManagerOptions } from "../src/credentials/token-manager.js";
import { JumpstarterError, UnavailableError } from "../src/errors.js";
import { RecordingLogger } from "./helpers/recording-logger.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const START = Date.parse("2030-01-01T00:00:00Z");

// An unsigned JWT with the given times; the manager only decodes it.
function jwt(issuedAtMs: number, expiresAtMs: number, id = "t"): string {
  return new UnsecuredJWT({ id }).setIssuedAt(issuedAtMs / 1000).setExpirationTime(expiresAtMs / 1000).encode();
}

let managers: TokenManager[] = [];

function newManager(options: Partial<TokenManagerOptions> & Pick<TokenManagerOptions, "token">): TokenManager {
  const manager = new TokenManager({
    rotate: async () => {
      throw new Error("unexpected rotation");
    },
    logger: new RecordingLogger(),
    random: () => 0.5,
    ...options,
  });
  managers.push(manager);
  return manager;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  vi.setSystemTime(START);
});

afterEach(() => {
  for (const manager of managers) manager.close();
  managers = [];
  vi.useRealTimers();
});

describe("retryDelayMs", () => {
  it("doubles up to the cap", () => {
    const options = { initialMs: 5000, maxMs: 300_000, random: () => 1 };
    expect([1, 2, 3, 4, 6, 7, 8, 40].map((failures) => retryDelayMs(failures, options))).toEqual([
      5000, 10_000, 20_000, 40_000, 160_000, 300_000, 300_000, 300_000,
    ]);
  });

  it("jitters into the upper half", () => {
    expect(retryDelayMs(1, { initialMs: 5000, maxMs: 300_000, random: () => 0 })).toBe(2500);
    expect(retryDelayMs(1, { initialMs: 5000, maxMs: 300_000, random: () => 0.5 })).toBe(3750);
  });
});

describe("TokenManager", () => {
  describe("retries", () => {
    it("waits the backoff delay between attempts", async () => {
      const attempts: number[] = [];
      const fresh = jwt(START, START + HOUR, "fresh");
      const manager = newManager({
        token: jwt(START - 40 * MINUTE, START + 20 * MINUTE),
        rotate: async () => {
          attempts.push(Date.now() - START);
          if (attempts.length < 3) throw new UnavailableError("controller restarting");
          return { token: fresh, expiresAt: undefined };
        },
      });

      await vi.advanceTimersByTimeAsync(0);
      await vi.advanceTimersByTimeAsync(3749);
      expect(attempts).toEqual([0]);
      await vi.advanceTimersByTimeAsync(1);
      expect(attempts).toEqual([0, 3750]);
      await vi.advanceTimersByTimeAsync(7500);
      expect(attempts).toEqual([0, 3750, 11_250]);
      expect(manager.token("GetLease")).toBe(fresh);
    });

    it("retries no later than 30 s before expiry", async () => {
      const attempts: number[] = [];
      newManager({
        token: jwt(START - 50 * MINUTE, START + 40_000),
        retryDelayMs: 60_000,
        rotate: async () => {
          attempts.push(Date.now() - START);
          throw new UnavailableError("controller restarting");
        },
      });

      await vi.advanceTimersByTimeAsync(10_000);
      expect(attempts).toEqual([0, 10_000]);
    });

    it("stops after a permanent failure", async () => {
      let attempts = 0;
      const logger = new RecordingLogger();
      newManager({
        token: jwt(START - 40 * MINUTE, START + 20 * MINUTE),
        logger,
        rotate: async () => {
          attempts++;
          throw new JumpstarterError("failed to get credential secret", { code: Code.Internal });
        },
      });

      await vi.advanceTimersByTimeAsync(15 * MINUTE);
      expect(attempts).toBe(1);
      expect(logger.at("warn")).toHaveLength(1);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe("token", () => {
    it("never rotates for RotateToken", () => {
      const rotate = vi.fn(async (): Promise<RotatedToken> => ({ token: "new", expiresAt: undefined }));
      const due = jwt(START - 40 * MINUTE, START + 20 * MINUTE);
      const manager = newManager({ token: due, rotate });
      expect(manager.token("RotateToken")).toBe(due);
      expect(rotate).not.toHaveBeenCalled();
      manager.token("GetLease");
      expect(rotate).toHaveBeenCalledTimes(1);
    });

    it("prefers the expiry from RotateToken", async () => {
      const expiresAt = new Date(START + 2 * HOUR);
      const manager = newManager({
        token: jwt(START - 40 * MINUTE, START + 20 * MINUTE),
        rotate: async () => ({ token: "opaque", expiresAt }),
      });
      await manager.rotateNow();
      expect(manager.expiresAt).toEqual(expiresAt);
    });

    it("counts an opaque token's lifetime from when it arrived", async () => {
      let attempts = 0;
      const manager = newManager({
        token: jwt(START, START + 365 * 24 * HOUR),
        rotate: async () => {
          attempts++;
          return { token: `opaque-${attempts}`, expiresAt: new Date(Date.now() + HOUR) };
        },
      });
      await manager.rotateNow();
      await vi.advanceTimersByTimeAsync(30 * MINUTE - 1);
      expect(attempts).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(attempts).toBe(2);
    });
  });

  describe("provider", () => {
    it("backs off when the provider returns the same due token", async () => {
      const due = jwt(START - 40 * MINUTE, START + 20 * MINUTE);
      const provider = vi.fn(() => due);
      const manager = newManager({ token: provider });

      await manager.token("GetLease");
      manager.token("GetLease");
      expect(provider).toHaveBeenCalledTimes(1);

      await vi.advanceTimersByTimeAsync(3749);
      expect(provider).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(provider).toHaveBeenCalledTimes(2);
      await vi.advanceTimersByTimeAsync(7500);
      expect(provider).toHaveBeenCalledTimes(3);
    });
  });
});
