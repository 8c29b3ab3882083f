// List the exporters that match a label selector and print them as a table, one column per label.
//
//   npx tsx examples/list-exporters.ts                      # default filter: arch=arm64
//   npx tsx examples/list-exporters.ts 'board in (rpi4,jetson-orin),location!=lab-b'
//
// With JMP_ENDPOINT, JMP_NAMESPACE and JMP_TOKEN set (and optionally JMP_NAME), it lists the
// exporters of that controller. Otherwise it starts the embedded mock controller with a sample lab.
import { ExporterStatus, JumpstarterClient, shortId, type Exporter } from "@jumpstarter/sdk";
import { startSampleLab } from "@jumpstarter/sdk/testing";

const filter = process.argv[2] ?? "arch=arm64";

async function main(): Promise<void> {
  const { JMP_ENDPOINT, JMP_NAMESPACE, JMP_TOKEN, JMP_NAME } = process.env;
  const lab = JMP_ENDPOINT && JMP_NAMESPACE && JMP_TOKEN ? undefined : await startSampleLab();
  const client = lab
    ? new JumpstarterClient({ endpoint: lab.endpoint, namespace: lab.namespace, token: lab.token, clientName: lab.clientName })
    : new JumpstarterClient({ endpoint: JMP_ENDPOINT!, namespace: JMP_NAMESPACE!, token: JMP_TOKEN!, clientName: JMP_NAME });

  try {
    // Small pages keep each response short on a large lab; the iterator fetches the next page while
    // this loop works on the current one.
    const exporters: Exporter[] = [];
    for await (const exporter of client.listExporters({ filter, pageSize: 50 })) {
      exporters.push(exporter);
    }

    console.log(`${exporters.length} exporter(s) in namespace ${client.namespace} match "${filter}":\n`);
    console.log(formatTable(exporters));
  } finally {
    await client.close();
    await lab?.close();
  }
}

/** Renders NAME, STATUS and one column per label key that any exporter has, sorted by key. */
function formatTable(exporters: Exporter[]): string {
  if (exporters.length === 0) return "(none)";

  const labelKeys = [...new Set(exporters.flatMap((exporter) => Object.keys(exporter.labels)))].sort();
  const header = ["NAME", "STATUS", ...labelKeys.map((key) => key.toUpperCase())];
  const rows = exporters.map((exporter) => [
    shortId(exporter.name),
    statusText(exporter),
    ...labelKeys.map((key) => exporter.labels[key] ?? "-"),
  ]);

  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n");
}

/** Formats the exporter's status in lowercase with hyphens, such as `lease-ready`. */
function statusText(exporter: Exporter): string {
  return ExporterStatus[exporter.status].toLowerCase().replaceAll("_", "-");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
