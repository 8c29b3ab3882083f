// The mock controller must speak plain gRPC to any client, not only to connect-es. This test talks
// to it with @grpc/grpc-js and @grpc/proto-loader on the project's proto files, a second,
// independent implementation of the protocol and of the protobuf encoding.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMockController, type MockController } from "../src/testing/index.js";

type UnaryMethod = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: any) => void) => void;
type GrpcClient = grpc.Client & Record<string, UnaryMethod>;

let mock: MockController;
let client: GrpcClient;

function call(method: string, request: object): Promise<any> {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${mock.token}`);
  metadata.set("jumpstarter-namespace", mock.namespace);
  return new Promise((resolve, reject) => {
    client[method]!.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

beforeAll(async () => {
  mock = await startMockController({
    namespace: "lab",
    exporters: [
      { name: "rpi4-01", labels: { board: "rpi4" } },
      { name: "rpi4-02", labels: { board: "rpi4" }, online: false },
    ],
  });
  const definition = protoLoader.loadSync("jumpstarter/client/v1/client.proto", {
    includeDirs: [fileURLToPath(new URL("../proto", import.meta.url))],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as any;
  const ClientService = loaded.jumpstarter.client.v1.ClientService as typeof grpc.Client;
  client = new ClientService(mock.endpoint.replace("http://", ""), grpc.credentials.createInsecure()) as GrpcClient;
});

afterAll(async () => {
  client?.close();
  await mock?.close();
});

describe("mock controller with grpc-js", () => {
  describe("GetExporter", () => {
    it("decodes every field", async () => {
      const exporter = await call("GetExporter", { name: "namespaces/lab/exporters/rpi4-02" });
      expect(exporter.name).toBe("namespaces/lab/exporters/rpi4-02");
      expect(exporter.labels).toEqual({ board: "rpi4" });
      expect(exporter.online).toBe(false);
      expect(exporter.status).toBe("EXPORTER_STATUS_OFFLINE");
      expect(exporter.enabled).toBe(true);
    });
  });

  describe("ListExporters", () => {
    it("pages with continue tokens", async () => {
      const first = await call("ListExporters", { parent: "namespaces/lab", page_size: 1 });
      expect(first.exporters.map((e: { name: string }) => e.name)).toEqual(["namespaces/lab/exporters/rpi4-01"]);
      expect(first.next_page_token).not.toBe("");
      const second = await call("ListExporters", { parent: "namespaces/lab", page_size: 1, page_token: first.next_page_token });
      expect(second.exporters.map((e: { name: string }) => e.name)).toEqual(["namespaces/lab/exporters/rpi4-02"]);
    });
  });

  describe("CreateLease", () => {
    it("round-trips times, tags and conditions", async () => {
      const lease = await call("CreateLease", {
        parent: "namespaces/lab",
        lease_id: "interop-1",
        lease: { selector: "board=rpi4", duration: { seconds: 90, nanos: 0 }, tags: { team: "kernel" } },
      });
      expect(lease.name).toBe("namespaces/lab/leases/interop-1");
      expect(lease.duration).toEqual({ seconds: "90", nanos: 0 });
      expect(lease.tags).toEqual({ team: "kernel" });
      expect(lease.client).toBe("namespaces/lab/clients/" + mock.clientName);

      let read = await call("GetLease", { name: lease.name });
      for (let attempt = 0; attempt < 100 && !read.conditions.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True"); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        read = await call("GetLease", { name: lease.name });
      }
      expect(read.exporter).toBe("namespaces/lab/exporters/rpi4-01");
      expect(read.effective_begin_time.seconds).toMatch(/^\d+$/);
      expect(read.conditions.find((c: { type: string }) => c.type === "Ready")).toMatchObject({ status: "True", reason: "Ready" });
    });
  });

  describe("errors", () => {
    it("carries the status code", async () => {
      const error = await call("GetLease", { name: "bad" }).catch((e: grpc.ServiceError) => e);
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    });
  });
});
