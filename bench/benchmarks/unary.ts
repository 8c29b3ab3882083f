import { grpcJsReader, rawConnectReader, sdkReader, type ExporterReader } from "../lib/clients.js";
import { collectGarbage, TimeBudget } from "../lib/budget.js";
import { profile, summarizeProfile, type ProfileSummary } from "../lib/cpu-profile.js";
import { BENCH_EXPORTER } from "../lib/lab.js";
import { startMockProcess } from "../lib/mock-process.js";
import type { Benchmark, BenchmarkContext } from "../lib/report.js";
import { renderUnaryReport } from "../reports/unary.js";

/** Wall-clock limit of one batch of calls. */
const BATCH_LIMIT_MS = 60_000;

export type Mode = "sequential" | "concurrent";

/** Rounds of a run, calls per client in each round, and calls kept in flight. */
export interface RunShape {
  rounds: number;
  batchCalls: number;
  inFlight: number;
}

export interface Settings {
  runs: number;
  warmupCalls: number;
  sequential: RunShape;
  concurrent: RunShape;
  /** Calls, kept in flight as in the concurrent mode, in the CPU profile of each client. */
  profiledCalls: number;
}

const FULL: Settings = {
  runs: 9,
  warmupCalls: 1_000,
  sequential: { rounds: 20, batchCalls: 20, inFlight: 1 },
  concurrent: { rounds: 5, batchCalls: 256, inFlight: 64 },
  profiledCalls: 3_200,
};
const QUICK: Settings = {
  runs: 3,
  warmupCalls: 200,
  sequential: { rounds: 4, batchCalls: 20, inFlight: 1 },
  concurrent: { rounds: 2, batchCalls: 128, inFlight: 64 },
  profiledCalls: 256,
};

/** Wall time and client CPU time of one run of one client, each divided by the number of calls. */
export interface Run {
  wallUsPerCall: number;
  cpuUsPerCall: number;
}

export type Runs = Record<Mode, Run[]>;

export const benchmark: Benchmark = {
  number: 1,
  id: "unary",
  title: "Unary cost: `getExporter` through the SDK, raw connect and grpc-js",
  run: runUnary,
};

async function runUnary(context: BenchmarkContext): Promise<string> {
  const settings = context.quick ? QUICK : FULL;
  const mock = await startMockProcess({ exporterCount: 10 });
  const readers = [sdkReader(mock), rawConnectReader(mock), grpcJsReader(mock, context.repoRoot)];
  const runs = new Map<ExporterReader, Runs>(readers.map((reader) => [reader, { sequential: [], concurrent: [] }]));
  const profiles = new Map<ExporterReader, ProfileSummary>();
  try {
    for (const reader of readers) {
      await runBatch(reader, settings.sequential.inFlight, settings.warmupCalls);
      await runBatch(reader, settings.concurrent.inFlight, settings.warmupCalls);
    }
    for (let run = 0; run < settings.runs; run++) {
      context.log(`unary: run ${run + 1} of ${settings.runs}`);
      for (const mode of ["sequential", "concurrent"] as const) {
        collectGarbage();
        const measured = await measureRun(readers, settings[mode], run);
        for (const reader of readers) runs.get(reader)![mode].push(measured.get(reader)!);
      }
      await mock.clearCalls();
    }
    for (const reader of readers) {
      context.log(`unary: profiling ${reader.label}`);
      const cpuProfile = await profile(async () => void (await runBatch(reader, settings.concurrent.inFlight, settings.profiledCalls)));
      profiles.set(reader, summarizeProfile(cpuProfile, context.repoRoot));
    }
  } finally {
    for (const reader of readers) reader.close();
    await mock.close();
  }
  return renderUnaryReport({ readers, runs, profiles, settings }, context.repoRoot);
}

// Interleaves the clients in short batches, in an order that rotates every round, and sums each
// client's batches. Load from other processes on the machine then falls on the three clients
// alike, where whole runs one after the other would let a burst of load hit one client only.
async function measureRun(readers: readonly ExporterReader[], shape: RunShape, run: number): Promise<Map<ExporterReader, Run>> {
  const totals = new Map(readers.map((reader) => [reader, { wallUs: 0, cpuUs: 0 }]));
  for (let round = 0; round < shape.rounds; round++) {
    for (const reader of rotate(readers, run + round)) {
      const batch = await runBatch(reader, shape.inFlight, shape.batchCalls);
      const total = totals.get(reader)!;
      total.wallUs += batch.wallUs;
      total.cpuUs += batch.cpuUs;
    }
  }
  const calls = shape.rounds * shape.batchCalls;
  return new Map(readers.map((reader) => {
    const total = totals.get(reader)!;
    return [reader, { wallUsPerCall: total.wallUs / calls, cpuUsPerCall: total.cpuUs / calls }];
  }));
}

// Runs `calls` calls with `inFlight` of them in flight at a time, and returns the wall time and
// the process's CPU time (user and system) that they took, in microseconds.
async function runBatch(reader: ExporterReader, inFlight: number, calls: number): Promise<{ wallUs: number; cpuUs: number }> {
  const budget = new TimeBudget(`${calls} calls, ${inFlight} in flight, through ${reader.label}`, BATCH_LIMIT_MS);
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < calls) {
      started++;
      await reader.getExporter(BENCH_EXPORTER);
      budget.check();
    }
  };
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, lane));
  const wallUs = (performance.now() - start) * 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { wallUs, cpuUs: cpu.user + cpu.system };
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
