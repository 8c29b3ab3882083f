// Writes the unary benchmark's section of BENCHMARKS.md: the figures, the ratios and targets, the
// CPU profiles, and an explanation for each missed target.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Mode, Run, Runs, Settings } from "../benchmarks/unary.js";
import type { ExporterReader } from "../lib/clients.js";
import { SAMPLING_INTERVAL_US, SDK_AREA, type ProfileSummary } from "../lib/cpu-profile.js";
import { markdownTable, verdict } from "../lib/report.js";
import { formatRatio, formatSummary, pairedRatios, summarize, type Summary } from "../lib/stats.js";

/** Everything that the unary benchmark measured. */
export interface UnaryResults {
  /** The SDK, raw connect and grpc-js, in this order. */
  readers: readonly ExporterReader[];
  runs: Map<ExporterReader, Runs>;
  profiles: Map<ExporterReader, ProfileSummary>;
  settings: Settings;
}

/** Renders the section body in Markdown. */
export async function renderUnaryReport(results: UnaryResults, repoRoot: string): Promise<string> {
  const { readers, runs, profiles, settings } = results;
  return [
    describe(readers, runs, settings),
    "",
    describeProfiles(readers, profiles, settings),
    "",
    await explainGaps(readers, runs, profiles, settings, repoRoot),
  ]
    .join("\n")
    .trimEnd();
}

function describe(readers: readonly ExporterReader[], runs: Map<ExporterReader, Runs>, settings: Settings): string {
  const [sdk, raw, grpcJs] = readers.map((reader) => runs.get(reader)!) as [Runs, Runs, Runs];
  const wall = (list: Run[]): number[] => list.map((run) => run.wallUsPerCall);
  const cpu = (list: Run[]): number[] => list.map((run) => run.cpuUsPerCall);
  const callsPerSecond = (list: Run[]): number[] => list.map((run) => 1e6 / run.wallUsPerCall);

  const figures = markdownTable(
    ["Client", "Sequential: µs per call", "Sequential: client CPU µs per call", `${settings.concurrent.inFlight} in flight: calls/s`, `${settings.concurrent.inFlight} in flight: client CPU µs per call`],
    readers.map((reader) => {
      const measured = runs.get(reader)!;
      return [
        reader.label,
        formatSummary(summarize(wall(measured.sequential)), 1),
        formatSummary(summarize(cpu(measured.sequential)), 1),
        formatSummary(summarize(callsPerSecond(measured.concurrent))),
        formatSummary(summarize(cpu(measured.concurrent)), 1),
      ];
    }),
  );

  const ratioRow = (label: string, baseline: Runs): string[] => [
    label,
    formatRatio(timeRatio(sdk, baseline, "sequential", "wall")),
    formatRatio(timeRatio(sdk, baseline, "sequential", "cpu")),
    formatRatio(timeRatio(sdk, baseline, "concurrent", "wall")),
    formatRatio(timeRatio(sdk, baseline, "concurrent", "cpu")),
  ];
  const ratios = markdownTable(
    ["Ratio (time per call)", "Sequential: wall", "Sequential: client CPU", `${settings.concurrent.inFlight} in flight: wall`, `${settings.concurrent.inFlight} in flight: client CPU`],
    [ratioRow("SDK / raw connect", raw), ratioRow("SDK / grpc-js", grpcJs)],
  );

  const target = (baseline: Runs, limit: number, name: string): string => {
    const check = (measure: Measure, label: string): string => {
      const sequential = timeRatio(sdk, baseline, "sequential", measure).median;
      const concurrent = timeRatio(sdk, baseline, "concurrent", measure).median;
      return `${label} ${verdict(Math.max(sequential, concurrent) <= limit)} (${sequential.toFixed(2)}x sequential, ${concurrent.toFixed(2)}x with ${settings.concurrent.inFlight} in flight)`;
    };
    return `- ${name}: ${check("wall", "wall time")}; ${check("cpu", "client CPU")}.`;
  };

  const sequential = settings.sequential;
  const concurrent = settings.concurrent;
  return [
    `Each client reads the same exporter from one mock controller, which runs in a child process so that its CPU time is not counted as the client's. ` +
      `A run interleaves the three clients in short batches, in an order that rotates every round, so that load from other processes falls on all three alike: ` +
      `${sequential.rounds} rounds of ${sequential.batchCalls} sequential calls per client, then ${concurrent.rounds} rounds of ${concurrent.batchCalls} calls with ${concurrent.inFlight} in flight. ` +
      `Each figure is the median (min–max) of ${settings.runs} runs, after ${settings.warmupCalls.toLocaleString("en-US")} warm-up calls of each kind per client. ` +
      `Client CPU is the benchmark process's user and system time (\`process.cpuUsage()\`) divided by the calls, so garbage collection counts in whichever batch it falls. ` +
      `Ratios are taken run by run and a ratio below 1.00x means the SDK is faster.`,
    "",
    figures,
    "",
    ratios,
    "",
    "Targets, on the median ratios:",
    "",
    target(raw, LIMITS.raw, "SDK within 1.10x of raw connect"),
    target(grpcJs, LIMITS.grpcJs, "SDK at least as fast as grpc-js"),
  ].join("\n");
}

function describeProfiles(readers: readonly ExporterReader[], profiles: Map<ExporterReader, ProfileSummary>, settings: Settings): string {
  const perCall = (us: number): string => (us / settings.profiledCalls).toFixed(1);
  const summaries = readers.map((reader) => profiles.get(reader)!);
  const areaNames = [...new Set(summaries.flatMap((summary) => summary.areas.map((area) => area.name)))];
  const selfUs = (summary: ProfileSummary, name: string): number => summary.areas.find((area) => area.name === name)?.selfUs ?? 0;
  // Areas sorted by their largest share in any client; the small ones are summed in one row.
  const ranked = areaNames
    .map((name) => ({ name, largest: Math.max(...summaries.map((summary) => selfUs(summary, name) / settings.profiledCalls)) }))
    .sort((a, b) => b.largest - a.largest);
  // The SDK's own code always gets a row, because it is the figure this section is about.
  const shownAreas = ranked.filter((area) => area.largest >= 5 || area.name === SDK_AREA).map((area) => area.name);
  if (!shownAreas.includes(SDK_AREA)) shownAreas.push(SDK_AREA);
  const rest = areaNames.filter((name) => !shownAreas.includes(name));

  const areaRows = [
    ...shownAreas.map((name) => [name, ...summaries.map((summary) => perCall(selfUs(summary, name)))]),
    ["everything else", ...summaries.map((summary) => perCall(rest.reduce((sum, name) => sum + selfUs(summary, name), 0)))],
    ["**total, not idle**", ...summaries.map((summary) => `**${perCall(summary.busyUs)}**`)],
  ];
  const frameRows = Array.from({ length: Math.max(...summaries.map((summary) => summary.topFrames.length)) }, (_, rank) => [
    String(rank + 1),
    ...summaries.map((summary) => {
      const frame = summary.topFrames[rank];
      return frame === undefined ? "" : `\`${frame.name.replaceAll("|", "/")}\` ${perCall(frame.selfUs)}`;
    }),
  ]);

  return [
    `### Where the client's time goes`,
    "",
    `A CPU profile of each client (V8's sampling profiler, as \`node --cpu-prof\` uses it, every ${SAMPLING_INTERVAL_US} µs) over ${settings.profiledCalls.toLocaleString("en-US")} calls with ${settings.concurrent.inFlight} in flight, after the runs above. ` +
      `Self time in µs per call, grouped by where the code lives. Areas under 5 µs per call in every client are summed in one row, except the SDK's own code. ` +
      `One profile per client, so these figures carry more noise than the medians above.`,
    "",
    markdownTable(["Area", ...readers.map((reader) => reader.label)], areaRows),
    "",
    `Functions with the most self time in each profile, in µs per call:`,
    "",
    markdownTable(["Rank", ...readers.map((reader) => reader.label)], frameRows),
  ].join("\n");
}

type Measure = "wall" | "cpu";

/** Limits of the unary targets: SDK time per call over the baseline's, at most. */
const LIMITS = { raw: 1.1, grpcJs: 1.0 };

// Ratio of one client's time per call to a baseline's, run by run, for one mode and one measure.
function timeRatio(client: Runs, baseline: Runs, mode: Mode, measure: Measure): Summary {
  const pick = (list: Run[]): number[] => list.map((run) => (measure === "wall" ? run.wallUsPerCall : run.cpuUsPerCall));
  return summarize(pairedRatios(pick(client[mode]), pick(baseline[mode])));
}

// Explains each missed target with the profiles, in words for BENCHMARKS.md. Returns "" when every
// target is met.
async function explainGaps(
  readers: readonly ExporterReader[],
  runs: Map<ExporterReader, Runs>,
  profiles: Map<ExporterReader, ProfileSummary>,
  settings: Settings,
  repoRoot: string,
): Promise<string> {
  const [sdk, raw, grpcJs] = readers.map((reader) => runs.get(reader)!) as [Runs, Runs, Runs];
  const [sdkProfile, rawProfile, grpcJsProfile] = readers.map((reader) => profiles.get(reader)!) as [ProfileSummary, ProfileSummary, ProfileSummary];
  const perCall = (us: number): string => (us / settings.profiledCalls).toFixed(0);
  const areaUs = (summary: ProfileSummary, test: (name: string) => boolean): number =>
    summary.areas.filter((area) => test(area.name)).reduce((sum, area) => sum + area.selfUs, 0);
  const cases = (["sequential", "concurrent"] as const).flatMap((mode) => (["wall", "cpu"] as const).map((measure) => ({ mode, measure })));
  const caseName = ({ mode, measure }: { mode: Mode; measure: Measure }): string =>
    `${mode === "sequential" ? "sequential" : `${settings.concurrent.inFlight}-in-flight`} ${measure === "wall" ? "wall time" : "client CPU"}`;
  const paragraphs: string[] = [];

  const missedRaw = cases.filter(({ mode, measure }) => timeRatio(sdk, raw, mode, measure).median > LIMITS.raw);
  if (missedRaw.length > 0) {
    const sdkOwnUs = areaUs(sdkProfile, (name) => name === SDK_AREA);
    const share = ((100 * sdkOwnUs) / sdkProfile.busyUs).toFixed(1);
    const spans = missedRaw.map((missed) => {
      const ratio = timeRatio(sdk, raw, missed.mode, missed.measure);
      return { name: caseName(missed), ratio, noise: ratio.min <= 1 };
    });
    paragraphs.push(
      `**Gap to raw connect.** The SDK's own code (src/) takes ${perCall(sdkOwnUs)} µs of the ${perCall(sdkProfile.busyUs)} µs of client CPU per call in its profile (${share}%). ` +
        `The rest of that profile is the work that raw connect does too, plus the deadline and the close signal that the SDK passes with every call, which cost connect-es a timer and an abort listener per call. ` +
        spans
          .map(({ name, ratio, noise }) =>
            noise
              ? `The ${name} ratio ranges from ${ratio.min.toFixed(2)}x to ${ratio.max.toFixed(2)}x between runs, so runs where the SDK was as fast or faster sit beside runs where it was slower, and its median of ${ratio.median.toFixed(2)}x is within the run-to-run noise of this machine rather than a cost that the profile can show.`
              : `The ${name} ratio stays above 1.00x in every run (${ratio.min.toFixed(2)}x to ${ratio.max.toFixed(2)}x), and the profile does not show its cause in src/.`,
          )
          .join(" "),
    );
  }

  const missedGrpcJs = cases.filter(({ mode, measure }) => timeRatio(sdk, grpcJs, mode, measure).median > LIMITS.grpcJs);
  if (missedGrpcJs.length > 0) {
    const connectVersion = await packageVersion(repoRoot, "@connectrpc/connect");
    const rawVersusGrpcJs = missedGrpcJs.map(
      (missed) => `${timeRatio(raw, grpcJs, missed.mode, missed.measure).median.toFixed(2)}x the ${caseName(missed)} of grpc-js`,
    );
    // Where the SDK stays within its limit of raw connect, the rest of the gap is connect's.
    const belowSdk = missedGrpcJs.every(({ mode, measure }) => timeRatio(sdk, raw, mode, measure).median <= LIMITS.raw);
    const connectUs = areaUs(rawProfile, (name) => name.startsWith("@connectrpc/"));
    const grpcJsUs = areaUs(grpcJsProfile, (name) => name.startsWith("@grpc/") || name.startsWith("protobufjs"));
    const gc = (summary: ProfileSummary): number => areaUs(summary, (name) => name === "(garbage collector)");
    paragraphs.push(
      `**Gap to grpc-js.** In the same runs raw connect alone takes ` +
        new Intl.ListFormat("en-US").format(rawVersusGrpcJs) +
        (belowSdk
          ? `. The SDK stays within ${LIMITS.raw.toFixed(2)}x of raw connect in each of these, so the gap lies below the SDK, in connect-es ${connectVersion}, which the SDK is built on. `
          : `, so raw connect accounts for part of the gap and the SDK for the rest, as the paragraph on the gap to raw connect describes. `) +
        `In the profiles raw connect spends ${perCall(rawProfile.busyUs)} µs of CPU per call, ${perCall(connectUs)} µs of them in connect's own packages and ${perCall(gc(rawProfile))} µs in garbage collection, ` +
        `where grpc-js spends ${perCall(grpcJsProfile.busyUs)} µs, ${perCall(grpcJsUs)} µs in grpc-js and its protobuf library and ${perCall(gc(grpcJsProfile))} µs in garbage collection. ` +
        `For each unary call connect-es creates two AbortControllers and, when the call ends, aborts one of them, so Node builds a \`DOMException\` and connect a \`ConnectError\`, each with a stack trace ` +
        `(\`setupSignal\` in \`@connectrpc/connect/dist/esm/protocol/run-call.js\`). It also passes each request and response body through async-iterable pipelines, and converts headers to and from web-standard \`Headers\`. ` +
        `grpc-js works with callbacks and plain objects.` +
        (belowSdk ? ` Matching it would mean replacing the transport under the SDK, not a change in src/.` : ""),
    );
  }
  return paragraphs.length === 0 ? "" : ["### Why targets were missed", "", ...paragraphs.flatMap((paragraph) => [paragraph, ""])].join("\n");
}

async function packageVersion(repoRoot: string, name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(repoRoot, "node_modules", name, "package.json"), "utf8")) as { version: string };
  return manifest.version;
}
