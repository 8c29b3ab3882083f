// Runs the benchmarks in bench/benchmarks/ and writes BENCHMARKS.md.
//
//   npm run bench                   every benchmark, full size; writes BENCHMARKS.md
//   npm run bench -- --quick        fewer repetitions and smaller sizes, under a minute
//   npm run bench -- --only unary   selected benchmarks (repeat --only for more)
//   npm run bench -- --output FILE  write the report to FILE
//
// Only a full run of every benchmark writes BENCHMARKS.md by default, so a smoke run never
// replaces the committed figures. Other runs write to the temporary directory.
import { readdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, platform, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Benchmark, BenchmarkContext } from "./lib/report.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string", multiple: true },
    output: { type: "string" },
  },
});

const benchmarks = await loadBenchmarks(join(repoRoot, "bench", "benchmarks"));
const selected = values.only === undefined ? benchmarks : benchmarks.filter((benchmark) => values.only!.includes(benchmark.id));
const unknown = (values.only ?? []).filter((id) => !benchmarks.some((benchmark) => benchmark.id === id));
if (unknown.length > 0) {
  throw new Error(`unknown benchmark ${unknown.join(", ")}: expected one of ${benchmarks.map((benchmark) => benchmark.id).join(", ")}`);
}

const complete = !values.quick && selected.length === benchmarks.length;
const output = values.output ?? (complete ? join(repoRoot, "BENCHMARKS.md") : join(tmpdir(), "jumpstarter-sdk-BENCHMARKS.md"));
const context: BenchmarkContext = {
  quick: values.quick,
  repoRoot,
  log: (message) => process.stderr.write(`${message}\n`),
};

const started = performance.now();
const loadAtStart = loadavg()[0]!;
const sections: { number: number; markdown: string }[] = [];
for (const benchmark of selected) {
  context.log(`== ${benchmark.number}. ${benchmark.title}`);
  const sectionStart = performance.now();
  const body = await benchmark.run(context);
  const seconds = (performance.now() - sectionStart) / 1000;
  sections.push({ number: benchmark.number, markdown: `## ${benchmark.number}. ${benchmark.title}\n\n${body}\n\n_Run time: ${seconds.toFixed(1)} s._` });
}

await writeFile(output, renderReport(sections.map((section) => section.markdown), { quick: values.quick, seconds: (performance.now() - started) / 1000, loadAtStart }));
context.log(`wrote ${output}`);

async function loadBenchmarks(folder: string): Promise<Benchmark[]> {
  const files = (await readdir(folder)).filter((file) => file.endsWith(".ts")).sort();
  const loaded: Benchmark[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(folder, file)).href)) as { benchmark?: Benchmark };
    if (module.benchmark === undefined) throw new Error(`bench/benchmarks/${file} does not export a "benchmark"`);
    loaded.push(module.benchmark);
  }
  return loaded.sort((a, b) => a.number - b.number);
}

function renderReport(bodies: readonly string[], run: { quick: boolean; seconds: number; loadAtStart: number }): string {
  const cpuList = cpus();
  const header = [
    "# Benchmarks",
    "",
    "What the SDK's conveniences cost, measured against the raw generated connect client and against",
    "@grpc/grpc-js, all talking to the mock controller over loopback HTTP/2. Absolute times vary from",
    "machine to machine, so compare the ratios. `npm run bench` runs every benchmark and rewrites this",
    "page; `npm run bench -- --quick` is a smoke run of under a minute with smaller sizes, which writes",
    "its report to the temporary directory instead. The code is in `bench/`.",
    "",
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Node.js: ${process.version} on ${platform()} ${release()}`,
    `- CPU: ${cpuList[0]?.model ?? "unknown"}, ${cpuList.length} cores; memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    // Other processes on the machine add noise to every figure, so the report states how busy it was.
    `- Load average (1 minute): ${run.loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`,
    `- Command: \`npm run bench${run.quick ? " -- --quick" : ""}\`, ${run.seconds.toFixed(0)} s in all`,
    "- Figures: median (min–max) over repeated runs",
  ];
  return `${[...header, "", ...bodies.flatMap((body) => [body, ""])].join("\n").trimEnd()}\n`;
}
