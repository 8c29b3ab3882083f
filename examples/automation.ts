// Automation script: list the exporters that match a filter, take one, run a step on it, and
// release it. The first Ctrl-C stops the step and releases the lease before the script exits with
// status 130; a second Ctrl-C exits at once.
//
// With JMP_ENDPOINT, JMP_NAMESPACE and JMP_TOKEN set (and optionally JMP_NAME), it talks to that
// controller. Otherwise it starts the embedded mock controller with a small sample lab.
//
//   npx tsx examples/automation.ts                      # AUTOMATION_FILTER=board=rpi4, a 5 s step
//   AUTOMATION_FILTER=board=jetson-orin AUTOMATION_STEP_MS=20000 npx tsx examples/automation.ts
import { setTimeout as sleep } from "node:timers/promises";
import { ExporterStatus, JumpstarterClient, formatDurationMs, shortId, type LeaseHandle, type Logger } from "@jumpstarter/sdk";
import { startSampleLab } from "@jumpstarter/sdk/testing";

const FILTER = process.env.AUTOMATION_FILTER ?? "board=rpi4";
const STEP_MS = Number(process.env.AUTOMATION_STEP_MS ?? 5_000);

const interrupted = new AbortController();

// Shows the SDK's warnings and errors, such as a release that failed, and drops the rest.
const logger: Logger = { debug: () => {}, info: () => {}, warn: console.warn, error: console.error };

function onInterrupt(): void {
  // Removing the handler gives a second Ctrl-C Node.js's default action: exit at once.
  process.off("SIGINT", onInterrupt);
  console.log("\nCtrl-C: stopping the step and releasing the lease (press Ctrl-C again to quit at once).");
  interrupted.abort(new Error("interrupted by Ctrl-C"));
}

async function main(): Promise<void> {
  process.on("SIGINT", onInterrupt);
  const { client, stop } = await connect();
  try {
    const exporters = await client.listExporters({ filter: FILTER }).toArray();
    const online = exporters.filter((exporter) => exporter.online);
    // A free exporter is taken at once; a busy one means waiting until its holder releases it.
    const chosen = online.find((exporter) => exporter.status === ExporterStatus.AVAILABLE) ?? online[0];
    console.log(`${exporters.length} exporters match "${FILTER}", ${online.length} of them online.`);
    if (chosen === undefined) throw new Error(`no online exporter matches "${FILTER}"; check the filter or the lab.`);

    const exporterName = shortId(chosen.name);
    console.log(`Leasing ${exporterName}...`);
    await client.withLease(
      {
        exporterName,
        duration: "15m",
        signal: interrupted.signal,
        tags: { purpose: "automation-example" },
        onProgress: (progress) => {
          if (progress.kind === "state") console.log(`  ${formatDurationMs(progress.elapsedMs)}: ${progress.state.summary}`);
        },
      },
      (lease) => runStep(lease, interrupted.signal),
    );
    console.log("Released the lease.");
  } finally {
    process.off("SIGINT", onInterrupt);
    await client.close();
    await stop();
  }
}

// Stands in for real work on the exporter, such as flashing an image and booting it. It checks the
// signal between steps, so that Ctrl-C ends it promptly.
async function runStep(lease: LeaseHandle, signal: AbortSignal): Promise<void> {
  console.log(`Running the step on ${lease.exporter} (board ${lease.exporterLabels.board ?? "unknown"}) for ${formatDurationMs(STEP_MS)}.`);
  lease.onEnding(60_000, () => console.log("The lease ends within a minute."));
  for (let done = 0; done < STEP_MS; done += 1_000) {
    await sleep(Math.min(1_000, STEP_MS - done), undefined, { signal });
    console.log(`  step: ${formatDurationMs(Math.min(done + 1_000, STEP_MS))} of ${formatDurationMs(STEP_MS)}`);
  }
  console.log("The step finished.");
}

async function connect(): Promise<{ client: JumpstarterClient; stop: () => Promise<void> }> {
  const { JMP_ENDPOINT, JMP_NAMESPACE, JMP_TOKEN, JMP_NAME } = process.env;
  if (JMP_ENDPOINT && JMP_NAMESPACE && JMP_TOKEN) {
    const client = new JumpstarterClient({ endpoint: JMP_ENDPOINT, namespace: JMP_NAMESPACE, token: JMP_TOKEN, clientName: JMP_NAME, logger });
    return { client, stop: async () => {} };
  }
  const lab = await startSampleLab();
  console.log(`No JMP_ENDPOINT set: using the embedded mock controller at ${lab.endpoint}.`);
  const client = new JumpstarterClient({ endpoint: lab.endpoint, namespace: lab.namespace, token: lab.token, clientName: lab.clientName, logger });
  return { client, stop: () => lab.close() };
}

main().catch((error: unknown) => {
  if (interrupted.signal.aborted) {
    // withLease has released the lease by now; a failed release was logged above.
    console.log("Stopped.");
    process.exitCode = 130;
    return;
  }
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
