import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  JumpstarterClient,
  TokenExpiredError,
  UnauthenticatedError,
  type JumpstarterClientOptions,
  type TokenProvider,
  type TokenRequest,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { RecordingLogger } from "./helpers/recording-logger.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let mock: MockController;
const clients: JumpstarterClient[] = [];

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "oidc-user", exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }] });
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await mock.close();
});

function newClient(token: TokenProvider, options: Partial<JumpstarterClientOptions> = {}): JumpstarterClient {
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: "lab", token, ...options });
  clients.push(client);
  return client;
}

/** A provider that returns the given tokens in turn and records every request. */
function scriptedProvider(...tokens: Array<string | { token: string; expiresAt?: Date }>): TokenProvider & { requests: TokenRequest[] } {
  const requests: TokenRequest[] = [];
  const provider = async (request: TokenRequest) => {
    requests.push(request);
    const next = tokens.length > 1 ? tokens.shift()! : tokens[0]!;
    return next;
  };
  return Object.assign(provider, { requests });
}

// A token that the controller rejects as expired while the provider claims it has an hour left,
// as with a skewed clock, so that the client sends it instead of renewing it first.
async function staleToken(): Promise<{ token: string; expiresAt: Date }> {
  const token = await mock.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 2 * HOUR) });
  return { token, expiresAt: new Date(Date.now() + HOUR) };
}

describe("JumpstarterClient token provider", () => {
  describe("first token", () => {
    it("is fetched once for concurrent calls", async () => {
      const provider = scriptedProvider(mock.token);
      const client = newClient(provider);

      await Promise.all(Array.from({ length: 20 }, () => client.getExporter("rpi4-01")));

      expect(provider.requests).toEqual([{ forceRefresh: false }]);
      expect(new Set(mock.callsTo("GetExporter").map((call) => call.headers["authorization"]))).toEqual(new Set([`Bearer ${mock.token}`]));
    });

    it("takes expiresAt from the provider", async () => {
      const expiresAt = new Date(Date.now() + 10 * HOUR);
      const client = newClient(scriptedProvider({ token: mock.token, expiresAt }));
      await client.getExporter("rpi4-01");
      expect(client.tokenExpiresAt).toEqual(expiresAt);
    });

    it("reports a failing provider", async () => {
      const client = newClient(async () => {
        throw new Error(`identity service down, last token ${mock.token}`);
      });
      const error = await client.getExporter("rpi4-01").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect((error as Error).message).toContain("the token provider failed: identity service down");
      expect((error as Error).message).not.toContain(mock.token);
      expect(mock.calls).toHaveLength(0);
    });

    it("rejects an empty token", async () => {
      const client = newClient(async () => "");
      await expect(client.getExporter("rpi4-01")).rejects.toThrow(/the token provider returned no token/);
    });
  });

  describe("refresh after rejection", () => {
    it("retries once with the new token", async () => {
      const stale = await staleToken();
      const provider = scriptedProvider(stale, mock.token);
      const client = newClient(provider);

      const exporter = await client.getExporter("rpi4-01");

      expect(exporter.name).toBe("namespaces/lab/exporters/rpi4-01");
      expect(provider.requests).toEqual([{ forceRefresh: false }, { forceRefresh: true }]);
      expect(mock.callsTo("GetExporter").map((call) => call.headers["authorization"])).toEqual([`Bearer ${stale.token}`, `Bearer ${mock.token}`]);
    });

    it("does not retry an unchanged token", async () => {
      const provider = scriptedProvider(await staleToken());
      const client = newClient(provider);

      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(TokenExpiredError);

      expect(provider.requests).toEqual([{ forceRefresh: false }, { forceRefresh: true }]);
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("retries only once", async () => {
      const provider = scriptedProvider(await staleToken(), await staleToken(), await staleToken());
      const client = newClient(provider);

      await expect(client.getExporter("rpi4-01")).rejects.toBeInstanceOf(TokenExpiredError);

      expect(mock.callsTo("GetExporter")).toHaveLength(2);
      expect(provider.requests.filter((request) => request.forceRefresh)).toHaveLength(1);
    });

    it("retries after UNAUTHENTICATED", async () => {
      const provider = scriptedProvider("not-a-jwt", mock.token);
      const client = newClient(provider);
      await client.getExporter("rpi4-01");
      expect(mock.callsTo("GetExporter")).toHaveLength(2);
    });

    it("shares one refresh between concurrent failures", async () => {
      const provider = scriptedProvider(await staleToken(), mock.token);
      const client = newClient(provider);
      await Promise.all(Array.from({ length: 10 }, () => client.getExporter("rpi4-01")));
      expect(provider.requests).toEqual([{ forceRefresh: false }, { forceRefresh: true }]);
      expect(mock.callsTo("GetExporter")).toHaveLength(20);
    });

    it("leaves other errors alone", async () => {
      const provider = scriptedProvider(mock.token);
      const client = newClient(provider);
      await expect(client.getExporter("missing")).rejects.toThrow(/not found/);
      expect(provider.requests).toEqual([{ forceRefresh: false }]);
    });
  });

  describe("renewal", () => {
    it("asks again inside the window", async () => {
      const nearExpiry = { token: mock.token, expiresAt: new Date(Date.now() + 10_000) };
      const later = await mock.issueToken();
      const provider = scriptedProvider(nearExpiry, later);
      const client = newClient(provider);

      await client.getExporter("rpi4-01");
      await client.getExporter("rpi4-01");

      expect(provider.requests).toEqual([{ forceRefresh: false }, { forceRefresh: false }]);
      expect(mock.callsTo("GetExporter").map((call) => call.headers["authorization"])).toEqual([`Bearer ${mock.token}`, `Bearer ${later}`]);
      expect(mock.callsTo("RotateToken")).toHaveLength(0);
    });

    it("does not call onTokenRotated", async () => {
      const rotated: unknown[] = [];
      const provider = scriptedProvider({ token: mock.token, expiresAt: new Date(Date.now() + 10_000) }, await mock.issueToken());
      const client = newClient(provider, { onTokenRotated: (token) => void rotated.push(token) });
      await client.getExporter("rpi4-01");
      await client.getExporter("rpi4-01");
      expect(rotated).toEqual([]);
    });
  });

  describe("secrets", () => {
    it("keep the token out of inspect, JSON and logs", async () => {
      const logger = new RecordingLogger();
      const provider = scriptedProvider({ token: mock.token, expiresAt: new Date(Date.now() + 10_000) }, await mock.issueToken());
      const client = newClient(provider, { logger });
      await client.getExporter("rpi4-01");
      await client.rotateToken();

      expect(inspect(client, { showHidden: true, depth: 10 })).not.toContain(mock.token);
      expect(inspect(provider, { showHidden: true, depth: 10 })).not.toContain(mock.token);
      expect(JSON.stringify(client)).not.toContain(mock.token);
      expect(JSON.stringify({ endpoint: mock.endpoint, namespace: "lab", token: provider })).not.toContain(mock.token);
      expect(logger.text()).not.toContain(mock.token);
    });
  });
});
