// Type-checked with tsc in a fresh project that installed the packed tarball, then compiled and
// run: the declarations of both entry points must resolve through `exports` and describe the code.
import {
  DEFAULT_TIMEOUT_MS,
  ExporterStatus,
  JumpstarterClient,
  JumpstarterError,
  formatDurationMs,
  type Exporter,
  type JumpstarterClientOptions,
  type Lease,
  type PagedIterable,
} from "@jumpstarter/sdk";
import { startSampleLab, type MockController, type MockExporter } from "@jumpstarter/sdk/testing";

function describeExporter(exporter: Exporter): string {
  return `${exporter.name} ${ExporterStatus[exporter.status]}`;
}

async function main(): Promise<void> {
  const lab: MockController = await startSampleLab();
  const options: JumpstarterClientOptions = { endpoint: lab.endpoint, namespace: lab.namespace, token: lab.token };
  await using client = new JumpstarterClient(options);
  try {
    const listing: PagedIterable<Exporter> = client.listExporters({ filter: "arch=arm64" });
    const exporters: Exporter[] = await listing.toArray();
    const offline: MockExporter[] = lab.exporters().filter((exporter) => !exporter.online);
    const leases: Lease[] = await client.listLeases().toArray();

    if (exporters.length === 0 || offline.length === 0) throw new Error("the sample lab should have arm64 and offline exporters");
    console.log(`check.ts: ${exporters.map(describeExporter).join(", ")}; ${leases.length} lease(s)`);
    console.log(`check.ts: default call timeout ${formatDurationMs(DEFAULT_TIMEOUT_MS)}`);
  } catch (error) {
    if (error instanceof JumpstarterError) console.error(`${error.name} (code ${error.code}): ${error.message}`);
    throw error;
  } finally {
    await lab.close();
  }
}

await main();
