import { Session } from "node:inspector/promises";

/** A V8 CPU profile, as `node --cpu-prof` writes it and the inspector's `Profiler.stop` returns it. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one code area or one function, in microseconds. */
export interface SelfTime {
  name: string;
  selfUs: number;
}

/** Self time of a profile grouped by where the code lives, and the functions with the most. */
export interface ProfileSummary {
  /** Sampled time that was not idle, in microseconds. */
  busyUs: number;
  areas: SelfTime[];
  topFrames: SelfTime[];
}

/** Sampling interval of the profiler, in microseconds. V8's default is 1,000. */
export const SAMPLING_INTERVAL_US = 200;

/**
 * Profiles `work` with V8's CPU profiler, the same one that `node --cpu-prof` starts, but only
 * while `work` runs, so that start-up and warm-up stay out of the profile.
 */
export async function profile(work: () => Promise<void>): Promise<CpuProfile> {
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await session.post("Profiler.start");
    await work();
    const { profile: result } = await session.post("Profiler.stop");
    return result as CpuProfile;
  } finally {
    // Disconnecting also stops the profiler when `work` failed.
    session.disconnect();
  }
}

/**
 * Sums the self time of every sample by area (the SDK's src/, gen/, each package, Node's http2,
 * other Node internals, garbage collection) and by function.
 */
export function summarizeProfile(cpuProfile: CpuProfile, repoRoot: string, topCount = 12): ProfileSummary {
  const nodes = new Map(cpuProfile.nodes.map((node) => [node.id, node.callFrame]));
  const parents = new Map<number, number>();
  for (const node of cpuProfile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  // Samples under the inspector session are the profiler stopping itself, not the measured work.
  const inInspector = (id: number): boolean => {
    for (let current: number | undefined = id; current !== undefined; current = parents.get(current)) {
      if (nodes.get(current)?.url.startsWith("node:inspector")) return true;
    }
    return false;
  };
  const areas = new Map<string, number>();
  const frames = new Map<string, number>();
  let busyUs = 0;

  cpuProfile.samples.forEach((id, index) => {
    const frame = nodes.get(id);
    const deltaUs = cpuProfile.timeDeltas[index] ?? 0;
    if (frame === undefined || frame.functionName === "(idle)" || inInspector(id)) return;
    busyUs += deltaUs;
    const area = areaOf(frame.url, frame.functionName, repoRoot);
    areas.set(area, (areas.get(area) ?? 0) + deltaUs);
    const name = frame.functionName || "(anonymous)";
    const label = frame.url === "" ? name : `${name} (${shortLocation(frame.url, repoRoot)})`;
    frames.set(label, (frames.get(label) ?? 0) + deltaUs);
  });

  const sorted = (map: Map<string, number>): SelfTime[] =>
    [...map].map(([name, selfUs]) => ({ name, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
  return { busyUs, areas: sorted(areas), topFrames: sorted(frames).slice(0, topCount) };
}

/** Area name of the SDK's own code in {@link ProfileSummary.areas}. */
export const SDK_AREA = "SDK (src/)";

function areaOf(url: string, functionName: string, repoRoot: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "V8 built-ins";
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch !== null) return packageMatch[1]!;
  if (url.startsWith("node:internal/http2")) return "Node http2";
  if (url.startsWith("node:")) return "Node (other)";
  const path = shortLocation(url, repoRoot);
  if (path.startsWith("src/")) return SDK_AREA;
  if (path.startsWith("gen/")) return "generated code (gen/)";
  if (path.startsWith("bench/") || path.startsWith("test/helpers/")) return "benchmark loop and raw client setup";
  return "other";
}

// Shortens a script URL to `package: file.js` for a dependency, or to a path in the repository.
function shortLocation(url: string, repoRoot: string): string {
  const path = url.replace(/^file:\/\//, "");
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:.*\/)?([^/]+)$/.exec(path);
  if (inPackage !== null) return `${inPackage[1]}: ${inPackage[2]}`;
  return path.startsWith(repoRoot) ? path.slice(repoRoot.length).replace(/^\//, "") : path;
}
