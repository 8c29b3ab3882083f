import type { MockExporterSpec } from "@jumpstarter/sdk/testing";

/** Namespace of every benchmark lab. */
export const BENCH_NAMESPACE = "lab";

/** Exporter that the unary benchmark reads. */
export const BENCH_EXPORTER = "exp-000001";

const BOARDS = ["rpi4", "rpi5", "jetson-orin", "nuc", "imx8"];
const LOCATIONS = ["lab-a", "lab-b", "lab-c"];

/** Builds `count` exporters named `exp-000001` and up, each with four labels, one of them hidden. */
export function benchExporters(count: number): MockExporterSpec[] {
  return Array.from({ length: count }, (_, index) => ({
    name: `exp-${String(index + 1).padStart(6, "0")}`,
    labels: {
      board: BOARDS[index % BOARDS.length],
      location: LOCATIONS[index % LOCATIONS.length],
      arch: index % 2 === 0 ? "arm64" : "amd64",
      "jumpstarter.dev/rack": `r${index % 40}`,
    },
  }));
}
