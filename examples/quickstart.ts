// Quickstart: list the exporters that match a filter, lease one, wait until the controller assigns
// it, and release it.
//
// With JMP_ENDPOINT, JMP_NAMESPACE and JMP_TOKEN set (and optionally JMP_NAME), it talks to that
// controller. Otherwise it starts the embedded mock controller with a small sample lab.
import { setTimeout as sleep } from "node:timers/promises";
import {
  ExporterStatus,
  JumpstarterClient,
  formatDurationMs,
  isLeaseEnded,
  isLeaseReady,
  leaseCondition,
  leaseEndsAt,
  leaseExporterId,
  shortId,
  type Exporter,
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
    let lease = await client.createLease({ selector: LEASE_SELECTOR, duration: LEASE_DURATION, tags: { purpose: "quickstart" } });
    const leaseId = shortId(lease.name);
    try {
      let lastState = "";
      const startedAt = Date.now();
      while (!isLeaseReady(lease)) {
        const state = describeState(lease);
        if (state !== lastState) console.log(`  ${formatDurationMs(Date.now() - startedAt)}: ${state}`);
        lastState = state;
        if (isLeaseEnded(lease) || leaseCondition(lease, "Unsatisfiable")?.status === "True") {
          throw new Error(`lease ${leaseId} cannot be satisfied: ${state}`);
        }
        await sleep(250);
        lease = await client.getLease(leaseId);
      }
      console.log(`Lease ${leaseId} is ready: exporter ${leaseExporterId(lease)}, ends at ${leaseEndsAt(lease)?.toISOString()}`);
    } finally {
      await client.deleteLease(leaseId);
      console.log(`Released lease ${leaseId}.`);
    }
  } finally {
    await client.close();
    await stop();
  }
}

async function connect(): Promise<{ client: JumpstarterClient; stop: () => Promise<void> }> {
  const { JMP_ENDPOINT, JMP_NAMESPACE, JMP_TOKEN, JMP_NAME } = process.env;
  if (JMP_ENDPOINT && JMP_NAMESPACE && JMP_TOKEN) {
    console.log(`Using the controller at ${JMP_ENDPOINT}, namespace ${JMP_NAMESPACE}.`);
    const client = new JumpstarterClient({ endpoint: JMP_ENDPOINT, namespace: JMP_NAMESPACE, token: JMP_TOKEN, clientName: JMP_NAME });
    return { client, stop: async () => {} };
  }

  // A short ready delay, so that the progress display has something to show.
  const lab = await startSampleLab({ readyDelayMs: 1200 });
  console.log(`No JMP_ENDPOINT set: started the embedded mock controller at ${lab.endpoint}.\n`);
  const client = new JumpstarterClient({ endpoint: lab.endpoint, namespace: lab.namespace, token: lab.token, clientName: lab.clientName });
  return { client, stop: () => lab.close() };
}

function describeState(lease: Parameters<typeof isLeaseReady>[0]): string {
  for (const type of ["Ready", "Unsatisfiable", "Invalid", "Pending"]) {
    const condition = leaseCondition(lease, type);
    if (condition?.status === "True" || (type === "Ready" && condition?.status === "False")) {
      return `${type}=${condition.status} (${condition.reason ?? "no reason"}${condition.message ? `: ${condition.message}` : ""})`;
    }
  }
  return "waiting for the controller";
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
