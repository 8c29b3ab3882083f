import { startMockController, type MockController, type MockControllerOptions } from "./mock-controller.js";
import type { MockExporterSpec } from "./mock-exporters.js";

/** Client that holds the busy lease in {@link startSampleLab}. */
export const SAMPLE_LAB_OTHER_CLIENT = "ci-runner-7";

/** Id of the lease that {@link SAMPLE_LAB_OTHER_CLIENT} holds in {@link startSampleLab}. */
export const SAMPLE_LAB_OTHER_LEASE = "ci-runner-7-nightly";

/**
 * Returns six exporters of a small hardware lab: three Raspberry Pi 4 boards (one offline), two
 * Jetson Orin boards and one QEMU x86 target, with `board`, `arch`, `location` and `dut` labels.
 * `rpi4-01` also carries a hidden `jumpstarter.dev/` label. Each call returns fresh objects.
 */
export function sampleLab(): MockExporterSpec[] {
  return [
    {
      name: "jetson-orin-01",
      labels: { board: "jetson-orin", arch: "arm64", location: "lab-a", dut: "camera-module" },
    },
    {
      name: "jetson-orin-02",
      labels: { board: "jetson-orin", arch: "arm64", location: "lab-b", dut: "can-bus" },
    },
    {
      name: "qemu-x86-01",
      labels: { board: "qemu", arch: "amd64", location: "cloud", dut: "virtual" },
    },
    {
      name: "rpi4-01",
      labels: {
        board: "rpi4",
        arch: "arm64",
        location: "lab-a",
        dut: "sd-mux",
        "jumpstarter.dev/rack": "a3",
      },
    },
    {
      name: "rpi4-02",
      labels: { board: "rpi4", arch: "arm64", location: "lab-a", dut: "usb-gadget" },
    },
    {
      name: "rpi4-03",
      labels: { board: "rpi4", arch: "arm64", location: "lab-b", dut: "sd-mux" },
      online: false,
      statusMessage: "exporter lost its connection to the controller",
    },
  ];
}

/**
 * Starts a mock controller with {@link sampleLab} (unless `options.exporters` is given) and a
 * two-hour lease that {@link SAMPLE_LAB_OTHER_CLIENT} holds on `jetson-orin-01`.
 *
 * Resolves once that lease is Ready, which takes `readyDelayMs` (default 0) plus a timer tick. If
 * the lease is not Ready within `readyDelayMs + 2000` ms, the controller is closed and the
 * promise rejects.
 */
export async function startSampleLab(options: MockControllerOptions = {}): Promise<MockController> {
  const controller = await startMockController({ ...options, exporters: options.exporters ?? sampleLab() });
  try {
    controller.createLeaseAs(SAMPLE_LAB_OTHER_CLIENT, {
      leaseId: SAMPLE_LAB_OTHER_LEASE,
      exporterName: "jetson-orin-01",
      durationMs: 2 * 60 * 60 * 1000,
      tags: { pipeline: "nightly" },
    });
    await waitForReady(controller, SAMPLE_LAB_OTHER_LEASE, (options.readyDelayMs ?? 0) + 2000);
  } catch (error) {
    await controller.close();
    throw error;
  }
  return controller;
}

async function waitForReady(controller: MockController, id: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const name = `namespaces/${controller.namespace}/leases/${id}`;
  for (;;) {
    const lease = controller.leases().find((candidate) => candidate.name === name);
    const ready = lease?.conditions.some((condition) => condition.type === "Ready" && condition.status === "True");
    if (ready === true) return;
    if (Date.now() > deadline) {
      throw new Error(`sample lab lease "${id}" did not become Ready within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
