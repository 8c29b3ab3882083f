// Imports a client library in a fresh process, makes one call and reports the times. The start-up
// benchmark compiles this file to JavaScript first, so nothing here goes through tsx.
import { readWorkerInput, sendWorkerResult } from "../lib/child-process.js";

/** Input of the start-up worker. */
export interface StartUpInput {
  /** `sdk` imports the package; `raw` imports connect and the generated code only. */
  variant: "sdk" | "raw";
  endpoint: string;
  namespace: string;
  token: string;
  exporter: string;
}

/** Milliseconds since the process started (`performance.timeOrigin`). */
export interface StartUpOutput {
  /** When this script began, after Node's own start-up. */
  scriptStartMs: number;
  /** When the imports had finished. */
  importedMs: number;
  /** When the first call had returned. */
  firstResultMs: number;
}

await sendWorkerResult(async (): Promise<StartUpOutput> => {
  const scriptStartMs = performance.now();
  const input = readWorkerInput<StartUpInput>();
  const measure = input.variant === "sdk" ? callWithSdk : callWithRawConnect;
  return { scriptStartMs, ...(await measure(input)) };
});

async function callWithSdk(input: StartUpInput): Promise<{ importedMs: number; firstResultMs: number }> {
  const { JumpstarterClient } = await import("../../src/index.js");
  const importedMs = performance.now();
  const client = new JumpstarterClient({ endpoint: input.endpoint, namespace: input.namespace, token: input.token });
  await client.getExporter(input.exporter);
  const firstResultMs = performance.now();
  await client.close();
  return { importedMs, firstResultMs };
}

async function callWithRawConnect(input: StartUpInput): Promise<{ importedMs: number; firstResultMs: number }> {
  const [{ createClient }, { createGrpcTransport }, { ClientService }] = await Promise.all([
    import("@connectrpc/connect"),
    import("@connectrpc/connect-node"),
    import("../../gen/jumpstarter/client/v1/client_pb.js"),
  ]);
  const importedMs = performance.now();
  const transport = createGrpcTransport({
    baseUrl: input.endpoint,
    interceptors: [
      (next) => (request) => {
        request.header.set("authorization", `Bearer ${input.token}`);
        request.header.set("jumpstarter-kind", "Client");
        request.header.set("jumpstarter-namespace", input.namespace);
        return next(request);
      },
    ],
  });
  const client = createClient(ClientService, transport);
  await client.getExporter({ name: `namespaces/${input.namespace}/exporters/${input.exporter}` });
  return { importedMs, firstResultMs: performance.now() };
}
