import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { JumpstarterClient } from "@jumpstarter/sdk";
import { join } from "node:path";
import { connectRaw } from "../../test/helpers/raw-client.js";
import type { MockProcess } from "./mock-process.js";

/** One way of reading an exporter, so that the unary benchmark runs the same loop over each. */
export interface ExporterReader {
  /** Row label in BENCHMARKS.md. */
  label: string;
  /** Reads one exporter by its short id and resolves once the response is decoded. */
  getExporter(id: string): Promise<unknown>;
  close(): void;
}

/** Creates the SDK's client, with its defaults: a 30 s deadline and the identity headers. */
export function sdkReader(mock: MockProcess): ExporterReader {
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token });
  return {
    label: "SDK (`JumpstarterClient`)",
    getExporter: (id) => client.getExporter(id),
    close: () => void client.close(),
  };
}

/**
 * Headers that the SDK sends on each call without a client name, for the raw clients to send too.
 */
export function identityHeaders(mock: MockProcess): Record<string, string> {
  return { authorization: `Bearer ${mock.token}`, "jumpstarter-kind": "Client", "jumpstarter-namespace": mock.namespace };
}

/**
 * Creates the generated connect client over `createGrpcTransport`, with an interceptor that sets
 * the SDK's headers and nothing else: no deadline, no name checks, no error conversion.
 */
export function rawConnectReader(mock: MockProcess): ExporterReader {
  const raw = connectRaw(mock.endpoint, { headers: identityHeaders(mock) });
  const parent = `namespaces/${mock.namespace}`;
  return {
    label: "raw connect (generated client)",
    getExporter: (id) => raw.client.getExporter({ name: `${parent}/exporters/${id}` }),
    close: raw.close,
  };
}

type UnaryCallback = (error: grpc.ServiceError | null, response: unknown) => void;
type GrpcJsClient = grpc.Client & Record<string, (request: object, metadata: grpc.Metadata, callback: UnaryCallback) => void>;

/**
 * Creates a @grpc/grpc-js client from the project's proto files through @grpc/proto-loader, with
 * the options most grpc-js users pass, and sends the SDK's headers as metadata built per call.
 */
export function grpcJsReader(mock: MockProcess, repoRoot: string): ExporterReader {
  const definition = protoLoader.loadSync("jumpstarter/client/v1/client.proto", {
    includeDirs: [join(repoRoot, "proto")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    jumpstarter: { client: { v1: { ClientService: typeof grpc.Client } } };
  };
  const Service = loaded.jumpstarter.client.v1.ClientService;
  const client = new Service(mock.endpoint.replace("http://", ""), grpc.credentials.createInsecure()) as GrpcJsClient;
  const headers = Object.entries(identityHeaders(mock));
  const parent = `namespaces/${mock.namespace}`;

  return {
    label: "@grpc/grpc-js + proto-loader",
    getExporter: (id) =>
      new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        for (const [name, value] of headers) metadata.set(name, value);
        client.GetExporter!({ name: `${parent}/exporters/${id}` }, metadata, (error, response) => (error ? reject(error) : resolve(response)));
      }),
    close: () => client.close(),
  };
}
