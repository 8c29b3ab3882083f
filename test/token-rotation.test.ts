import { inspect } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_RENEW_BEFORE_MS,
  DeadlineExceededError,
  JumpstarterClient,
  TokenExpiredError,
  readTokenTimes,
  renewalThresholdMs,
  type JumpstarterClientOptions,
  type RotatedToken,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { RecordingLogger, deferred } from "./helpers/recording-logger.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const START = new Date("2030-01-01T00:00:00Z");

let mock: MockController | undefined;
const clients: JumpstarterClient[] = [];

async function startMock(tokenLifetimeMs = HOUR): Promise<MockController> {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", tokenLifetimeMs, exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }] });
  return mock;
}

function newClient(options: Partial<JumpstarterClientOptions> = {}): JumpstarterClient {
  const client = new JumpstarterClient({ endpoint: mock!.endpoint, namespace: "lab", clientName: "ci-runner", token: mock!.token, ...options });
  clients.push(client);
  return client;
}

function authorizationsOf(method: "GetExporter" | "RotateToken"): string[] {
  return mock!.callsTo(method).map((call) => call.headers["authorization"]!.replace(/^Bearer /, ""));
}

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await mock?.close();
  mock = undefined;
  vi.useRealTimers();
});

describe("renewalThresholdMs", () => {
  it("uses 30 days for a year-long token", () => {
    const issuedAt = new Date("2030-01-01T00:00:00Z");
    const expiresAt = new Date(issuedAt.getTime() + 365 * DAY);
    expect(renewalThresholdMs({ issuedAt, expiresAt })).toBe(30 * DAY);
  });

  it("uses half the lifetime of an hour-long token", () => {
    const issuedAt = new Date("2030-01-01T00:00:00Z");
    const expiresAt = new Date(issuedAt.getTime() + HOUR);
    expect(renewalThresholdMs({ issuedAt, expiresAt })).toBe(30 * MINUTE);
  });

  it("switches at a 60-day lifetime", () => {
    const issuedAt = new Date(0);
    expect(renewalThresholdMs({ issuedAt, expiresAt: new Date(60 * DAY) })).toBe(30 * DAY);
    expect(renewalThresholdMs({ issuedAt, expiresAt: new Date(40 * DAY) })).toBe(20 * DAY);
  });

  it("takes a smaller renewBeforeMs", () => {
    const issuedAt = new Date(0);
    expect(renewalThresholdMs({ issuedAt, expiresAt: new Date(365 * DAY) }, 7 * DAY)).toBe(7 * DAY);
  });

  it("is zero for a token issued after its expiry", () => {
    expect(renewalThresholdMs({ issuedAt: new Date(HOUR), expiresAt: new Date(0) })).toBe(0);
  });

  it("defaults to 30 days", () => {
    expect(DEFAULT_RENEW_BEFORE_MS).toBe(30 * DAY);
  });
});

describe("readTokenTimes", () => {
  it("reads exp and iat of a mock token", async () => {
    await startMock(HOUR);
    const token = await mock!.issueToken({ issuedAt: START, lifetimeMs: HOUR });
    expect(readTokenTimes(token)).toEqual({ issuedAt: START, expiresAt: new Date(START.getTime() + HOUR) });
  });

  it("yields no times for a token that is not a JWT", () => {
    expect(readTokenTimes("opaque-token")).toEqual({ issuedAt: undefined, expiresAt: undefined });
  });
});

describe("JumpstarterClient token rotation", () => {
  describe("concurrent calls", () => {
    it("rotate once across the threshold", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(START);
      await startMock(HOUR);
      const rotated = deferred<RotatedToken>();
      const client = newClient({ onTokenRotated: (token) => rotated.resolve(token) });

      await Promise.all(Array.from({ length: 200 }, () => client.getExporter("rpi4-01")));
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);

      vi.setSystemTime(START.getTime() + 31 * MINUTE);
      await Promise.all(Array.from({ length: 200 }, () => client.getExporter("rpi4-01")));
      const fresh = await rotated.promise;
      await client.getExporter("rpi4-01");

      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
      const used = authorizationsOf("GetExporter");
      expect(used.slice(0, 400).every((token) => token === mock!.token)).toBe(true);
      expect(used[400]).toBe(fresh.token);
      expect(fresh.token).not.toBe(mock!.token);
    });

    it("wait for the new token near expiry", async () => {
      await startMock(HOUR);
      const nearlyExpired = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - HOUR + 20_000) });
      const client = newClient({ token: nearlyExpired });

      await Promise.all(Array.from({ length: 200 }, () => client.getExporter("rpi4-01")));

      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
      expect(authorizationsOf("RotateToken")).toEqual([nearlyExpired]);
      const used = new Set(authorizationsOf("GetExporter"));
      expect(used.size).toBe(1);
      expect(used.has(nearlyExpired)).toBe(false);
    });

    it("leave a token outside the window alone", async () => {
      await startMock(365 * DAY);
      const client = newClient();
      await Promise.all(Array.from({ length: 50 }, () => client.getExporter("rpi4-01")));
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);
    });
  });

  describe("idle client", () => {
    it("rotates on its timer", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      vi.setSystemTime(START);
      await startMock(HOUR);
      const rotated = deferred<RotatedToken>();
      const client = newClient({ onTokenRotated: (token) => rotated.resolve(token) });

      await vi.advanceTimersByTimeAsync(30 * MINUTE - 1000);
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);

      await vi.advanceTimersByTimeAsync(1000);
      const fresh = await rotated.promise;
      expect(mock!.calls.map((call) => call.method)).toEqual(["RotateToken"]);
      expect(client.tokenExpiresAt).toEqual(fresh.expiresAt);
      expect(fresh.expiresAt?.getTime()).toBe(START.getTime() + 30 * MINUTE + HOUR);
    });

    it("waits longer than the maximum timer delay", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      vi.setSystemTime(START);
      await startMock(365 * DAY);
      const rotated = deferred<RotatedToken>();
      newClient({ onTokenRotated: (token) => rotated.resolve(token) });

      await vi.advanceTimersByTimeAsync(335 * DAY - 1000);
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);

      await vi.advanceTimersByTimeAsync(1000);
      await rotated.promise;
      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
    });

    it("does not keep the process alive", async () => {
      await startMock(HOUR);
      const timersBefore = process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
      const client = newClient();
      const timersAfter = process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
      expect(client.tokenExpiresAt).toBeDefined();
      expect(timersAfter).toBe(timersBefore);
    });

    it("stops its timer on close", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      await startMock(HOUR);
      const client = newClient();
      expect(vi.getTimerCount()).toBe(1);
      await client.close();
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe("failures", () => {
    it("retries a transient failure", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      vi.setSystemTime(START);
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(START.getTime() - 40 * MINUTE) });
      const logger = new RecordingLogger();
      const rotated = deferred<RotatedToken>();
      const client = newClient({ token: inWindow, logger, onTokenRotated: (token) => rotated.resolve(token) });
      mock!.failNext("RotateToken", 1, { code: Code.Unavailable, message: "controller restarting" });

      const warned = logger.next("warn");
      await client.getExporter("rpi4-01");
      const warning = await warned;
      expect(warning.message).toMatch(/^token renewal failed; retrying in [1-5] s: rotate token "namespaces\/lab" failed: controller restarting/);

      await client.getExporter("rpi4-01");
      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
      expect(authorizationsOf("GetExporter")).toEqual([inWindow, inWindow]);

      await vi.advanceTimersByTimeAsync(5000);
      const fresh = await rotated.promise;
      await client.getExporter("rpi4-01");
      expect(mock!.callsTo("RotateToken")).toHaveLength(2);
      expect(authorizationsOf("GetExporter")[2]).toBe(fresh.token);
    });

    it("stops after a permanent failure", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      vi.setSystemTime(START);
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(START.getTime() - 40 * MINUTE) });
      const logger = new RecordingLogger();
      const client = newClient({ token: inWindow, logger });
      mock!.failNext("RotateToken", 1, { code: Code.Internal, message: "failed to get credential secret" });

      const warned = logger.next("warn");
      await client.getExporter("rpi4-01");
      const warning = await warned;
      expect(warning.message).toContain("will not try again");
      expect(warning.message).toContain("failed to get credential secret");
      expect(warning.message).toContain("jmp login");

      await vi.advanceTimersByTimeAsync(10 * MINUTE);
      await client.getExporter("rpi4-01");
      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
      expect(logger.at("warn")).toHaveLength(1);
    });

    it("ends a waiting call at its deadline", async () => {
      await startMock(HOUR);
      const nearlyExpired = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - HOUR + 20_000) });
      const client = newClient({ token: nearlyExpired });
      mock!.stallNext("RotateToken", 1);

      await expect(client.getExporter("rpi4-01", { timeoutMs: 200 })).rejects.toBeInstanceOf(DeadlineExceededError);
      expect(mock!.callsTo("GetExporter")).toHaveLength(0);
    });

    it("raises TokenExpiredError with the expiry", async () => {
      await startMock(HOUR);
      const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * HOUR);
      const expired = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt });
      const logger = new RecordingLogger();
      const client = newClient({ token: expired, logger });

      const error = await client.getExporter("rpi4-01").catch((e: unknown) => e);

      const expiredAt = new Date(issuedAt.getTime() + HOUR);
      expect(error).toBeInstanceOf(TokenExpiredError);
      expect((error as TokenExpiredError).expiredAt).toEqual(expiredAt);
      expect((error as Error).message).toContain(`The token expired at ${expiredAt.toISOString()}`);
      expect((error as Error).message).toContain("`jmp login`");
      expect((error as Error).message).not.toContain(expired);
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);
      expect(logger.at("warn").map((r) => r.message)).toEqual([
        `the client token expired at ${expiredAt.toISOString()} and cannot rotate itself; obtain a new token with \`jmp login\` or from an administrator.`,
      ]);
    });

    it("reads a bare UNAUTHENTICATED after expiry as expired", async () => {
      await startMock(HOUR);
      const expired = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 2 * HOUR) });
      const client = newClient({ token: expired });
      mock!.failNext("GetExporter", 1, { code: Code.Unauthenticated, message: "unauthenticated" });
      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(TokenExpiredError);
    });
  });

  describe("rotateToken", () => {
    it("calls onTokenRotated and switches", async () => {
      await startMock(365 * DAY);
      const seen: RotatedToken[] = [];
      const client = newClient({ onTokenRotated: (rotated) => void seen.push(rotated) });

      const rotated = await client.rotateToken();
      await client.getExporter("rpi4-01");

      expect(seen).toEqual([rotated]);
      expect(authorizationsOf("GetExporter")).toEqual([rotated.token]);
      expect(client.tokenExpiresAt).toEqual(rotated.expiresAt);
    });

    it("joins an automatic rotation in flight", async () => {
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 40 * MINUTE) });
      const seen: RotatedToken[] = [];
      const client = newClient({ token: inWindow, onTokenRotated: (rotated) => void seen.push(rotated) });
      mock!.stallNext("RotateToken", 1, { ms: 100 });

      await client.getExporter("rpi4-01");
      const rotated = await client.rotateToken();

      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
      expect(seen).toEqual([rotated]);
    });

    it("rejects when onTokenRotated fails", async () => {
      await startMock(365 * DAY);
      const client = newClient({
        onTokenRotated: () => {
          throw new Error("vault is sealed");
        },
      });
      await expect(client.rotateToken()).rejects.toThrow("vault is sealed");
      await client.getExporter("rpi4-01");
      expect(authorizationsOf("GetExporter")[0]).not.toBe(mock!.token);
    });

    it("does not rotate for RotateToken itself", async () => {
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 40 * MINUTE) });
      const client = newClient({ token: inWindow, tokenRotation: { enabled: false } });

      await client.rotateToken();
      await client.getExporter("rpi4-01");

      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
    });
  });

  describe("tokenRotation", () => {
    it("does nothing when disabled", async () => {
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 40 * MINUTE) });
      const client = newClient({ token: inWindow, tokenRotation: { enabled: false } });
      await client.getExporter("rpi4-01");
      await client.getExporter("rpi4-01");
      expect(mock!.callsTo("RotateToken")).toHaveLength(0);
    });

    it("renews earlier with a larger renewBeforeMs", async () => {
      await startMock(365 * DAY);
      const rotated = deferred<RotatedToken>();
      const token = await mock!.issueToken({ lifetimeMs: 365 * DAY, issuedAt: new Date(Date.now() - 300 * DAY) });
      const client = newClient({ token, tokenRotation: { renewBeforeMs: 90 * DAY }, onTokenRotated: (t) => rotated.resolve(t) });
      await client.getExporter("rpi4-01");
      await rotated.promise;
      expect(mock!.callsTo("RotateToken")).toHaveLength(1);
    });

    it("rejects a negative renewBeforeMs", async () => {
      await startMock(HOUR);
      expect(() => newClient({ tokenRotation: { renewBeforeMs: -1 } })).toThrow(/invalid tokenRotation.renewBeforeMs -1/);
    });

    it("never rotates a token without an expiry", async () => {
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      await startMock(HOUR);
      const client = newClient({ token: "opaque-token" });
      expect(client.tokenExpiresAt).toBeUndefined();
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe("secrets", () => {
    it("keep tokens out of logs, inspect and JSON", async () => {
      await startMock(HOUR);
      const inWindow = await mock!.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 40 * MINUTE) });
      const logger = new RecordingLogger();
      const rotated = deferred<RotatedToken>();
      const client = newClient({ token: inWindow, logger, onTokenRotated: (t) => rotated.resolve(t) });
      mock!.failNext("RotateToken", 1, { code: Code.Unavailable, message: `restarting, token ${inWindow}` });

      const warned = logger.next("warn");
      await client.getExporter("rpi4-01");
      await warned;
      const fresh = await client.rotateToken();

      expect(logger.records.length).toBeGreaterThan(1);
      for (const secret of [inWindow, fresh.token]) {
        expect(logger.text()).not.toContain(secret);
        expect(inspect(client, { showHidden: true, depth: 10 })).not.toContain(secret);
        expect(JSON.stringify(client)).not.toContain(secret);
      }
    });
  });
});
