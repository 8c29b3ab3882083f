import { JumpstarterClient, TOKEN_EXPIRY_MARGIN_MS, readTokenTimes, renewalThresholdMs, type RotatedToken } from "@jumpstarter/sdk";
import { setTimeout as sleep } from "node:timers/promises";
import { collectGarbage } from "../lib/budget.js";
import { BENCH_EXPORTER } from "../lib/lab.js";
import { startMockProcess, type MockProcess } from "../lib/mock-process.js";
import { markdownTable, verdict, type Benchmark, type BenchmarkContext } from "../lib/report.js";
import { formatNumber, formatRatio, formatSummary, pairedRatios, percentile, summarize } from "../lib/stats.js";

/** Counted bursts per case, and bursts before them that are not counted. */
const FULL = { repetitions: 12, warmUpBursts: 8 };
const QUICK = { repetitions: 1, warmUpBursts: 1 };

/** Calls in each burst. */
const BURST_CALLS = 1_000;
/** A burst starts its calls in this many waves, so that the renewal threshold can fall between two. */
const WAVES = 10;
/** Time between the starts of two waves, in milliseconds. */
const WAVE_INTERVAL_MS = 40;
/** Time from planning a burst to its first wave, for issuing the token and connecting. */
const SETUP_MS = 500;
/** Lifetime of the tokens that the rotation cases start with. */
const TOKEN_LIFETIME_MS = 60 * 60_000;

/** A burst's token and where its renewal threshold lies. */
interface Case {
  id: "none" | "control" | "window" | "margin";
  label: string;
  /**
   * Remaining lifetime of the token at the threshold, in milliseconds, or undefined for the
   * baseline, whose token is valid for a year and is not renewed during the burst.
   */
  remainingMs: number | undefined;
}

const CASES: readonly Case[] = [
  { id: "none", label: "no rotation (token valid for a year)", remainingMs: undefined },
  // The same as the first case, so that its ratio shows how far noise alone moves a ratio.
  { id: "control", label: "no rotation, second burst (control)", remainingMs: undefined },
  { id: "window", label: "threshold crossed mid-burst, 10 min before expiry", remainingMs: 10 * 60_000 },
  { id: "margin", label: `threshold crossed mid-burst, ${TOKEN_EXPIRY_MARGIN_MS / 1000} s before expiry`, remainingMs: TOKEN_EXPIRY_MARGIN_MS },
];

/** Measurements of one burst. */
interface Burst {
  /** Time from the start of each call to its result, in milliseconds, for the calls that succeeded. */
  latenciesMs: number[];
  failures: string[];
  /** From the start of the first wave to the last result, in milliseconds. */
  wallMs: number;
  /** Calls that started before the threshold. */
  startedBeforeThreshold: number;
  rotateTokenCalls: number;
  /** When the client sent RotateToken, in milliseconds after the threshold, or undefined without one. */
  rotateSentAfterThresholdMs: number | undefined;
  /** When RotateToken reached the mock's handler, in milliseconds after the threshold, or undefined without one. */
  rotateHandledAfterThresholdMs: number | undefined;
  /** GetExporter calls that carried the token that the burst started with. */
  oldTokenCalls: number;
  /** GetExporter calls that carried the token from RotateToken. */
  newTokenCalls: number;
}

export const benchmark: Benchmark = {
  number: 4,
  id: "rotation",
  title: "Rotation under load: 1,000 concurrent calls across the renewal threshold",
  run: runRotation,
};

async function runRotation(context: BenchmarkContext): Promise<string> {
  const settings = context.quick ? QUICK : FULL;
  const mock = await startMockProcess({ exporterCount: 10 });
  const bursts = new Map<Case, Burst[]>(CASES.map((scenario) => [scenario, []]));
  try {
    // In a trial run the bursts got faster over the first dozen or so, as both processes compiled
    // their code paths, so the first bursts are not counted. They take the rotation cases first.
    for (let burst = 0; burst < settings.warmUpBursts; burst++) {
      context.log(`rotation: warm-up burst ${burst + 1} of ${settings.warmUpBursts}`);
      await runBurst(mock, CASES[(burst + 2) % CASES.length]!);
    }
    for (let repetition = 0; repetition < settings.repetitions; repetition++) {
      // Rotating the order spreads any drift of the machine over the cases.
      for (const scenario of rotate(CASES, repetition)) {
        context.log(`rotation: repetition ${repetition + 1} of ${settings.repetitions}, ${scenario.label}`);
        bursts.get(scenario)!.push(await runBurst(mock, scenario));
      }
    }
  } finally {
    await mock.close();
  }
  return describe(bursts, settings);
}

/**
 * Gives a fresh client a token whose renewal threshold lies between the fifth and sixth wave of
 * the burst, opens its connection with one call, then starts the burst's calls in waves and waits
 * for all of them.
 */
async function runBurst(mock: MockProcess, scenario: Case): Promise<Burst> {
  const plannedAtMs = Date.now();
  // The threshold falls halfway between two waves, so that half the calls start before it.
  const thresholdAfterFirstWaveMs = (WAVES / 2 - 0.5) * WAVE_INTERVAL_MS;
  const earliestMs = plannedAtMs + SETUP_MS + thresholdAfterFirstWaveMs;
  const plan = scenario.remainingMs === undefined ? { token: mock.token, thresholdAtMs: earliestMs, renewBeforeMs: undefined } : await planToken(mock, scenario.remainingMs, earliestMs);
  const rotations: RotatedToken[] = [];
  let rotateSentAtMs: number | undefined;
  const client = new JumpstarterClient({
    endpoint: mock.endpoint,
    namespace: mock.namespace,
    token: plan.token,
    tokenRotation: plan.renewBeforeMs === undefined ? undefined : { renewBeforeMs: plan.renewBeforeMs },
    onTokenRotated: (rotated) => void rotations.push(rotated),
    // Runs after the SDK's own interceptors, so just before the request goes out.
    interceptors: [
      (next) => (request) => {
        if (request.method.name === "RotateToken") rotateSentAtMs ??= Date.now();
        return next(request);
      },
    ],
  });
  try {
    await client.getExporter(BENCH_EXPORTER);
    await mock.clearCalls();
    collectGarbage();

    const leadMs = plan.thresholdAtMs - thresholdAfterFirstWaveMs - Date.now();
    if (leadMs < 0) {
      throw new Error(`preparing the client took ${formatNumber(Date.now() - plannedAtMs)} ms, longer than the ${SETUP_MS} ms planned before the burst. The machine may be overloaded.`);
    }
    await sleep(leadMs);
    const { latenciesMs, failures, wallMs, startsAtMs } = await fireWaves(client);

    const exporterCalls = await mock.callsTo("GetExporter");
    const rotateCalls = await mock.callsTo("RotateToken");
    const newToken = rotations[0]?.token;
    return {
      latenciesMs,
      failures,
      wallMs,
      startedBeforeThreshold: startsAtMs.filter((at) => at < plan.thresholdAtMs).length,
      rotateTokenCalls: rotateCalls.length,
      rotateSentAfterThresholdMs: rotateSentAtMs === undefined ? undefined : rotateSentAtMs - plan.thresholdAtMs,
      rotateHandledAfterThresholdMs: rotateCalls[0] === undefined ? undefined : rotateCalls[0].atMs - plan.thresholdAtMs,
      oldTokenCalls: exporterCalls.filter((call) => call.token === plan.token).length,
      newTokenCalls: exporterCalls.filter((call) => newToken !== undefined && call.token === newToken).length,
    };
  } finally {
    await client.close();
    await mock.clearCalls();
  }
}

/**
 * Issues a token that has `remainingMs` left at its renewal threshold, with the threshold at
 * `earliestMs`, or up to a second later for a threshold in the last 30 s.
 *
 * A JWT's `exp` is in whole seconds. Outside the last 30 s, `renewBeforeMs` places the threshold to
 * the millisecond. Within them the threshold is the SDK's expiry margin, `exp` minus 30 s, so it
 * falls on a whole second.
 */
async function planToken(mock: MockProcess, remainingMs: number, earliestMs: number): Promise<{ token: string; thresholdAtMs: number; renewBeforeMs: number }> {
  const expiresAtMs = Math.ceil((earliestMs + remainingMs) / 1000) * 1000;
  const renewBeforeMs = remainingMs <= TOKEN_EXPIRY_MARGIN_MS ? remainingMs : expiresAtMs - earliestMs;
  const token = await mock.issueToken({ lifetimeMs: TOKEN_LIFETIME_MS, issuedAtMs: expiresAtMs - TOKEN_LIFETIME_MS });

  // The SDK renews no earlier than half the lifetime, so check that renewBeforeMs is what applies.
  const times = readTokenTimes(token);
  if (times.expiresAt?.getTime() !== expiresAtMs || times.issuedAt === undefined) {
    throw new Error(`the mock issued a token that expires at ${times.expiresAt?.toISOString()}, expected ${new Date(expiresAtMs).toISOString()}.`);
  }
  if (renewalThresholdMs({ issuedAt: times.issuedAt, expiresAt: times.expiresAt }, renewBeforeMs) !== renewBeforeMs) {
    throw new Error(`renewBeforeMs ${renewBeforeMs} exceeds half the token's lifetime of ${TOKEN_LIFETIME_MS} ms, so the threshold would move.`);
  }
  return { token, thresholdAtMs: expiresAtMs - renewBeforeMs, renewBeforeMs };
}

// Starts the burst's calls in waves, without waiting for any call before the last wave has started.
async function fireWaves(client: JumpstarterClient): Promise<{ latenciesMs: number[]; failures: string[]; wallMs: number; startsAtMs: number[] }> {
  const latenciesMs: number[] = [];
  const failures: string[] = [];
  const calls: Promise<void>[] = [];
  // Start times of the calls on the Date clock, which the threshold uses, at performance.now() precision.
  const startsAtMs: number[] = [];
  const epochMs = Date.now();
  const startMs = performance.now();
  for (let wave = 0; wave < WAVES; wave++) {
    const waveAtMs = startMs + wave * WAVE_INTERVAL_MS;
    if (performance.now() < waveAtMs) await sleep(waveAtMs - performance.now());
    for (let call = 0; call < BURST_CALLS / WAVES; call++) {
      const callStartMs = performance.now();
      startsAtMs.push(epochMs + (callStartMs - startMs));
      calls.push(
        client.getExporter(BENCH_EXPORTER).then(
          () => void latenciesMs.push(performance.now() - callStartMs),
          (error: unknown) => void failures.push(error instanceof Error ? error.message : String(error)),
        ),
      );
    }
  }
  // Each call ends by its 30 s deadline at the latest, so a stuck mock shows up as failed calls.
  await Promise.all(calls);
  return { latenciesMs, failures, wallMs: performance.now() - startMs, startsAtMs };
}

function describe(bursts: Map<Case, Burst[]>, settings: typeof FULL): string {
  const baseline = bursts.get(CASES[0]!)!;
  const percentileOf = (burst: Burst, fraction: number): number => {
    if (burst.latenciesMs.length === 0) throw new Error(`every call of a burst failed, the first with: ${burst.failures[0]}`);
    return percentile(burst.latenciesMs, fraction);
  };
  const ms = (values: number[]): string => formatSummary(summarize(values), 1);
  const count = (values: number[]): string => formatSummary(summarize(values));

  const figures = CASES.map((scenario) => {
    const list = bursts.get(scenario)!;
    const optional = (values: (number | undefined)[]): string => {
      const known = values.filter((value): value is number => value !== undefined);
      return known.length === 0 ? "–" : count(known);
    };
    return [
      scenario.label,
      ms(list.map((burst) => percentileOf(burst, 0.5))),
      ms(list.map((burst) => percentileOf(burst, 0.99))),
      count(list.map((burst) => burst.wallMs)),
      count(list.map((burst) => burst.startedBeforeThreshold)),
      count(list.map((burst) => burst.rotateTokenCalls)),
      optional(list.map((burst) => burst.rotateSentAfterThresholdMs)),
      optional(list.map((burst) => burst.rotateHandledAfterThresholdMs)),
      count(list.map((burst) => burst.oldTokenCalls)),
      count(list.map((burst) => burst.newTokenCalls)),
      formatNumber(list.reduce((sum, burst) => sum + burst.failures.length, 0)),
    ];
  });
  const ratios = CASES.slice(1).map((scenario) => {
    const list = bursts.get(scenario)!;
    const ratio = (fraction: number): string =>
      formatRatio(summarize(pairedRatios(list.map((burst) => percentileOf(burst, fraction)), baseline.map((burst) => percentileOf(burst, fraction)))));
    return [scenario.label, ratio(0.5), ratio(0.99)];
  });

  const rotating = CASES.filter((scenario) => scenario.remainingMs !== undefined).flatMap((scenario) => bursts.get(scenario)!);
  const steady = CASES.filter((scenario) => scenario.remainingMs === undefined).flatMap((scenario) => bursts.get(scenario)!);
  const oneRotation = rotating.every((burst) => burst.rotateTokenCalls === 1) && steady.every((burst) => burst.rotateTokenCalls === 0);
  const rotationCounts = [...new Set(rotating.map((burst) => burst.rotateTokenCalls))].sort((a, b) => a - b).join(", ");
  const allBursts = [...bursts.values()].flat();
  const failed = allBursts.reduce((sum, burst) => sum + burst.failures.length, 0);
  const firstFailure = allBursts.find((burst) => burst.failures.length > 0)?.failures[0];

  return [
    `Each burst is ${formatNumber(BURST_CALLS)} \`getExporter\` calls from a fresh \`JumpstarterClient\` to a mock controller in a child process, started in ${WAVES} waves of ${BURST_CALLS / WAVES}, ${WAVE_INTERVAL_MS} ms apart, without waiting for any call in between, so that all of them are in flight together. ` +
      `Before the burst the client makes one call to open its connection. The first ${settings.warmUpBursts} bursts, which take the cases in turn, are not counted, because in a trial run the bursts got faster over the first dozen or so while both processes compiled their code. ` +
      `In the rotation cases the mock issues the client a token (\`issueToken({ lifetimeMs, issuedAt })\`) and the client sets \`tokenRotation.renewBeforeMs\` so that the renewal threshold falls halfway between the fifth and the sixth wave. ` +
      `Ten minutes before expiry, calls go on with the old token while RotateToken runs. In the last ${TOKEN_EXPIRY_MARGIN_MS / 1000} s, calls wait for the new token. ` +
      `Latency runs from the start of each call to its result, and each figure is the median (min–max) over ${settings.repetitions} bursts per case, with the cases in an order that rotates every repetition. ` +
      `Token use and the time of RotateToken come from the mock's call log, whose clock is the same system clock.`,
    "",
    markdownTable(
      [
        "Case",
        "p50, ms",
        "p99, ms",
        "Burst, ms",
        "Calls started before the threshold",
        "RotateToken calls",
        "RotateToken sent, ms after the threshold",
        "RotateToken handled by the mock, ms after the threshold",
        "Calls with the old token",
        "Calls with the new token",
        "Failed calls",
      ],
      figures,
    ),
    "",
    markdownTable(["Case", "p50 against no rotation", "p99 against no rotation"], ratios),
    "",
    `Ratios are taken burst by burst, pairing the bursts of one repetition. The control row pairs two bursts that both run without a rotation, so its spread is the noise of the machine and the mock; a rotation ratio within that spread cannot be told apart from noise.`,
    "",
    "Targets:",
    "",
    `- Exactly one RotateToken per burst that crosses the threshold, and none without: ${verdict(oneRotation)} (RotateToken calls per rotation burst: ${rotationCounts}).`,
    `- No failed call: ${verdict(failed === 0)} (${formatNumber(failed)} of ${formatNumber(allBursts.length * BURST_CALLS)}${firstFailure === undefined ? "" : `; first error: ${firstFailure}`}).`,
  ].join("\n");
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
