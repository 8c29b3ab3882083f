// Quickstart: list the exporters that match a filter, lease one, show the wait on one line, use the
// lease, and release it.
//
// With JMP_ENDPOINT, JMP_NAMESPACE and JMP_TOKEN set (and optionally JMP_NAME), it talks to that
// controller. Otherwise it starts the embedded mock controller with a small sample lab.
import {
  ExporterStatus,
  JumpstarterClient,
  formatDurationMs,
  shortId,
  type Exporter,
  type LeaseProgress,
} from "@jumpstarter/sdk";
import { startSampleLab } from "@jumpstarter/sdk/testing";

const FILTER = process.env.QUICKSTART_FILTER ?? "arch=arm64";
const LEASE_SELECTOR = process.env.QUICKSTART_SELECTOR ?? "board=rpi4";
const LEASE_DURATION = "30m";

async function main(): Promise<void> {
  const { client, stop } = await connect();
  try {
    console.log(`Exporters matching "${FILTER}":`);
    const exporters: Exporter[] = await client.listExporters({ filter: FILTER }).toArray();
    printTable(exporters);

    console.log(`\nLeasing an exporter matching "${LEASE_SELECTOR}" for ${LEASE_DURATION}...`);
    const status = new StatusLine();
    const request = { selector: LEASE_SELECTOR, duration: LEASE_DURATION, tags: { purpose: "quickstart" } };

    // withLease releases the lease when the callback returns or throws.
    await client.withLease({ ...request, onProgress: (progress) => status.show(progress) }, async (lease) => {
      status.end();
      const labels = Object.entries(lease.exporterLabels).map(([key, value]) => `${key}=${value}`);
      console.log(`Lease ${lease.id} is ready: exporter ${lease.exporter} (${labels.join(", ")}), ends at ${lease.endsAt?.toISOString()}`);
      // Work with the exporter here. lease.extend("15m") adds time; lease.onEnding() warns before the end.
    });
    console.log("Released the lease.");
  } finally {
    await client.close();
    await stop();
  }
}

async function connect(): Promise<{ client: JumpstarterClient; stop: () => Promise<void> }> {
  const { JMP_ENDPOINT, JMP_NAMESPACE, JMP_TOKEN, JMP_NAME } = process.env;
  if (JMP_ENDPOINT && JMP_NAMESPACE && JMP_TOKEN) {
    console.log(`Using the controller at ${JMP_ENDPOINT}, namespace ${JMP_NAMESPACE}.`);
    const client = new JumpstarterClient({
      endpoint: JMP_ENDPOINT,
      namespace: JMP_NAMESPACE,
      token: JMP_TOKEN,
      clientName: JMP_NAME,
      releaseOnExit: true,
    });
    return { client, stop: async () => {} };
  }

  // A short ready delay, so that the progress display has something to show.
  const lab = await startSampleLab({ readyDelayMs: 1200 });
  console.log(`No JMP_ENDPOINT set: started the embedded mock controller at ${lab.endpoint}.\n`);
  const client = new JumpstarterClient({
    endpoint: lab.endpoint,
    namespace: lab.namespace,
    token: lab.token,
    clientName: lab.clientName,
    releaseOnExit: true,
  });
  return { client, stop: () => lab.close() };
}

/** One status line that a terminal rewrites in place; other outputs get one line per change. */
class StatusLine {
  #open = false;

  show(progress: LeaseProgress): void {
    // Padded so that the state texts line up from one line to the next.
    const elapsed = formatDurationMs(Math.round(progress.elapsedMs / 100) * 100).padStart(5);
    const text =
      progress.kind === "state" ? `  ${elapsed}  ${progress.state.summary}` : `  ${elapsed}  controller unreachable, retrying: ${progress.error.message}`;
    if (process.stdout.isTTY) {
      // Cut to the terminal's width, because a wrapped line would not be rewritten in place.
      const width = process.stdout.columns || 0;
      process.stdout.write(`\r\u001b[2K${width > 1 ? text.slice(0, width - 1) : text}`);
      this.#open = true;
    } else {
      console.log(text);
    }
  }

  end(): void {
    if (this.#open) process.stdout.write("\n");
    this.#open = false;
  }
}

function printTable(exporters: Exporter[]): void {
  const rows = exporters.map((exporter) => [
    shortId(exporter.name),
    ExporterStatus[exporter.status].toLowerCase().replaceAll("_", "-"),
    Object.entries(exporter.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(","),
  ]);
  const header = ["NAME", "STATUS", "LABELS"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) {
    console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  "));
  }
  if (rows.length === 0) console.log("(none)");
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
