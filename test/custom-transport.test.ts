import type { Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { JumpstarterClient } from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";

let mock: MockController;

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", exporters: [{ name: "rpi4-01" }] });
});

afterEach(async () => {
  await mock.close();
});

describe("JumpstarterClient", () => {
  describe("transport option", () => {
    it("adds the identity headers", async () => {
      const transport = createGrpcTransport({ baseUrl: mock.endpoint });
      const client = new JumpstarterClient({ transport, namespace: "lab", token: mock.token, clientName: "ci-runner" });
      await client.getExporter("rpi4-01");
      await client.close();
      const [call] = mock.callsTo("GetExporter");
      expect(call?.headers["authorization"]).toBe(`Bearer ${mock.token}`);
      expect(call?.headers["jumpstarter-namespace"]).toBe("lab");
      expect(call?.headers["jumpstarter-name"]).toBe("ci-runner");
    });

    it("runs the caller's interceptors after the SDK's", async () => {
      const seen: string[] = [];
      const recordAuth: Interceptor = (next) => async (request) => {
        seen.push(request.header.get("authorization") ?? "none");
        request.header.set("x-request-id", "r-1");
        return next(request);
      };
      const transport = createGrpcTransport({ baseUrl: mock.endpoint });
      const client = new JumpstarterClient({ transport, namespace: "lab", token: mock.token, interceptors: [recordAuth] });
      await client.getExporter("rpi4-01");
      await client.close();
      expect(seen).toEqual([`Bearer ${mock.token}`]);
      expect(mock.callsTo("GetExporter")[0]?.headers["x-request-id"]).toBe("r-1");
    });
  });

  describe("interceptors option", () => {
    it("sees every call", async () => {
      const methods: string[] = [];
      const recordMethod: Interceptor = (next) => async (request) => {
        methods.push(request.method.name);
        return next(request);
      };
      const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: "lab", token: mock.token, interceptors: [recordMethod] });
      await client.getExporter("rpi4-01");
      await client.listExporters().toArray();
      await client.close();
      expect(methods).toEqual(["GetExporter", "ListExporters"]);
    });
  });
});
