import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { runWorker } from "../lib/child-process.js";
import { BENCH_EXPORTER } from "../lib/lab.js";
import { startMockProcess } from "../lib/mock-process.js";
import { markdownTable, type Benchmark, type BenchmarkContext } from "../lib/report.js";
import { formatRatio, formatSummary, pairedRatios, summarize } from "../lib/stats.js";
import type { StartUpInput, StartUpOutput } from "../workers/start-up.js";

const FULL = { repetitions: 15 };
const QUICK = { repetitions: 2 };
const COMPILE_LIMIT_MS = 180_000;
const PROCESS_LIMIT_MS = 60_000;
/** Output folder of tsc for the start-up worker, as set in bench/tsconfig.start-up.json. */
const BUILD_FOLDER = join("node_modules", ".cache", "jumpstarter-sdk-bench", "start-up");

interface Sample extends StartUpOutput {
  /** From fork() in the parent to the child's exit, in milliseconds. */
  processMs: number;
}

export const benchmark: Benchmark = {
  number: 5,
  id: "start-up",
  title: "Start-up: import and a first call, against raw connect",
  run: runStartUp,
};

async function runStartUp(context: BenchmarkContext): Promise<string> {
  const settings = context.quick ? QUICK : FULL;
  const script = await compileWorker(context);
  const mock = await startMockProcess({ exporterCount: 10 });
  const samples: Record<StartUpInput["variant"], Sample[]> = { sdk: [], raw: [] };
  try {
    for (let repetition = 0; repetition < settings.repetitions; repetition++) {
      context.log(`start-up: repetition ${repetition + 1} of ${settings.repetitions}`);
      // Alternating which one goes first spreads any drift of the machine over both.
      const order: StartUpInput["variant"][] = repetition % 2 === 0 ? ["sdk", "raw"] : ["raw", "sdk"];
      for (const variant of order) {
        const input: StartUpInput = { variant, endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token, exporter: BENCH_EXPORTER };
        const forked = performance.now();
        const output = await runWorker<StartUpOutput>(script, input, { typescript: false, timeoutMs: PROCESS_LIMIT_MS, cwd: context.repoRoot });
        samples[variant].push({ ...output, processMs: performance.now() - forked });
      }
    }
  } finally {
    await mock.close();
  }
  return describe(samples, settings.repetitions);
}

// Compiles the SDK and the worker with tsc, as a published build would ship them.
async function compileWorker(context: BenchmarkContext): Promise<string> {
  context.log("start-up: compiling the SDK and the worker with tsc");
  const tsc = join(context.repoRoot, "node_modules", "typescript", "bin", "tsc");
  await promisify(execFile)(process.execPath, [tsc, "-p", join(context.repoRoot, "bench", "tsconfig.start-up.json")], {
    cwd: context.repoRoot,
    timeout: COMPILE_LIMIT_MS,
  });
  const folder = join(context.repoRoot, BUILD_FOLDER);
  // The folder sits under node_modules, where Node does not look for the project's package.json,
  // so it needs its own to load the files as ES modules.
  await writeFile(join(folder, "package.json"), `${JSON.stringify({ type: "module" })}\n`);
  return join(folder, "bench", "workers", "start-up.js");
}

function describe(samples: Record<StartUpInput["variant"], Sample[]>, repetitions: number): string {
  const columns = {
    imports: (sample: Sample) => sample.importedMs - sample.scriptStartMs,
    firstCall: (sample: Sample) => sample.firstResultMs - sample.importedMs,
    both: (sample: Sample) => sample.firstResultMs - sample.scriptStartMs,
    sinceStart: (sample: Sample) => sample.firstResultMs,
    process: (sample: Sample) => sample.processMs,
  };
  const row = (label: string, list: Sample[]): string[] => [
    label,
    ...Object.values(columns).map((column) => formatSummary(summarize(list.map(column)), 1)),
  ];
  const ratio = (column: (sample: Sample) => number): string =>
    formatRatio(summarize(pairedRatios(samples.sdk.map(column), samples.raw.map(column))));

  return [
    `Each sample is a fresh Node process that imports the client library, opens a connection to the mock controller (running in another process), reads one exporter and exits. ` +
      `The SDK and the worker are compiled to JavaScript with tsc first (\`bench/tsconfig.start-up.json\`), so the figures contain no TypeScript transpiling. ` +
      `_Raw connect_ imports \`@connectrpc/connect\`, \`@connectrpc/connect-node\` and the generated \`client_pb.js\`, which the SDK imports as well. ` +
      `Times are in milliseconds, the median (min–max) of ${repetitions} processes each, with the two variants alternating. ` +
      `_Since process start_ counts from \`performance.timeOrigin\`, and so includes Node's own start-up. _Whole process_ is measured by the parent, from fork to exit.`,
    "",
    markdownTable(
      ["Variant", "Imports", "First call", "Imports + first call", "Since process start", "Whole process"],
      [
        row("SDK (`JumpstarterClient`)", samples.sdk),
        row("raw connect", samples.raw),
        ["SDK / raw connect", ...Object.values(columns).map(ratio)],
      ],
    ),
  ].join("\n");
}
