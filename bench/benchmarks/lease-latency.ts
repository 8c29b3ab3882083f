import { DEFAULT_POLL_MAX_DELAY_MS, DEFAULT_POLL_MIN_DELAY_MS, JumpstarterClient, isLeaseEnded, isLeaseReady, pollDelayMs } from "@jumpstarter/sdk";
import { setTimeout as sleep } from "node:timers/promises";
import { TimeBudget } from "../lib/budget.js";
import { benchExporters } from "../lib/lab.js";
import { startMockProcess, type MockProcess, type MockProcessCall } from "../lib/mock-process.js";
import { markdownTable, verdict, type Benchmark, type BenchmarkContext } from "../lib/report.js";
import { formatNumber, formatSummary, summarize, type Summary } from "../lib/stats.js";

interface Settings {
  /** Times from creating a lease to Ready, in milliseconds. */
  readyDelaysMs: number[];
  /** Leases per Ready delay and per policy. */
  leasesPerPolicy: number;
}

const FULL: Settings = { readyDelaysMs: [100, 1_000, 5_000, 60_000], leasesPerPolicy: 16 };
const QUICK: Settings = { readyDelaysMs: [1_000], leasesPerPolicy: 4 };

/** Ready delays that the latency target applies to. Longer ones show the poll rate of a long wait. */
const TARGET_READY_DELAYS_MS = [100, 1_000, 5_000];
/** Target of the median delay from Ready to the end of `waitForLease`, in milliseconds. */
const TARGET_DELAY_MS = 300;
/** A Ready delay from this many milliseconds on counts as a long wait. */
const LONG_WAIT_MS = 30_000;
/** Reads from this many milliseconds after the start of a wait count towards its steady poll rate. */
const STEADY_AFTER_MS = 10_000;
/** Margin of the call-rate comparison of a long wait: 1%, as a fraction. */
const RATE_TOLERANCE = 0.01;
/** Interval of the fixed poll, in milliseconds: `jmp` reads the lease every 5 s until it is Ready. */
const FIXED_POLL_INTERVAL_MS = 5_000;
/** Lease duration, long enough that no lease ends during the benchmark. Every lease is released at the end. */
const LEASE_DURATION_MS = 10 * 60_000;
/** Simulated waits per Ready delay in the model of the SDK's schedule. */
const MODEL_DRAWS = 10_001;
/** Time between the starts of two leases of one configuration, in milliseconds. */
const LEASE_SPACING_MS = 20;
/** Time that a wait may take beyond its Ready delay before the benchmark gives up. */
const WAIT_LIMIT_MS = 60_000;

type Policy = "sdk" | "fixed";
const POLICY_LABELS: Record<Policy, string> = {
  sdk: "`waitForLease` (SDK)",
  fixed: "fixed 5 s poll (`getLease` loop)",
};

/** One lease's wait, timed on the benchmark's clock (`Date.now()`, milliseconds since the epoch). */
interface LeaseWait {
  policy: Policy;
  readyDelayMs: number;
  /** Full resource name of the lease. */
  name: string;
  /** When CreateLease returned and the wait began. */
  startedAtMs: number;
  /** When the wait resolved with the lease Ready. */
  resolvedAtMs: number;
}

/** A wait together with what the mock recorded for the lease. */
interface MeasuredWait extends LeaseWait {
  /** From the start of the wait to Ready on the mock. */
  readyAfterMs: number;
  /** From Ready on the mock to the end of the wait. */
  delayMs: number;
  /** From Ready on the mock to the arrival of the read that saw it Ready. */
  untilSeenMs: number;
  /** GetLease calls that the wait made. */
  reads: number;
  /** GetLease calls per minute over the whole wait. */
  readsPerMinute: number;
  /** Times between consecutive reads that both came {@link STEADY_AFTER_MS} or more after the start. */
  steadyIntervalsMs: number[];
}

export const benchmark: Benchmark = {
  number: 3,
  id: "lease-latency",
  title: "Lease latency: `waitForLease` against a fixed 5 s poll",
  run: runLeaseLatency,
};

async function runLeaseLatency(context: BenchmarkContext): Promise<string> {
  const settings = context.quick ? QUICK : FULL;
  const perDelay = 2 * settings.leasesPerPolicy;
  const exporters = benchExporters(settings.readyDelaysMs.length * perDelay).map((exporter) => exporter.name);
  const mock = await startMockProcess({ exporterCount: exporters.length });
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token });
  let measured: MeasuredWait[];
  try {
    await warmUp(client, mock, exporters.slice(0, perDelay));
    const start = async (readyDelayMs: number): Promise<{ done: Promise<LeaseWait[]> }> => {
      context.log(`lease-latency: ${perDelay} leases Ready after ${formatNumber(readyDelayMs)} ms`);
      const index = settings.readyDelaysMs.indexOf(readyDelayMs);
      return startConfiguration(client, mock, exporters.slice(index * perDelay, (index + 1) * perDelay), readyDelayMs);
    };

    // A long wait reads a few times a minute once its schedule is capped, so it runs alongside the
    // short ones, which run one at a time.
    const finished: LeaseWait[] = [];
    const longRuns = [];
    for (const readyDelayMs of settings.readyDelaysMs.filter((delay) => delay >= LONG_WAIT_MS)) longRuns.push(await start(readyDelayMs));
    for (const readyDelayMs of settings.readyDelaysMs.filter((delay) => delay < LONG_WAIT_MS)) finished.push(...(await (await start(readyDelayMs)).done));
    context.log("lease-latency: waiting for the long waits to end");
    for (const run of longRuns) finished.push(...(await run.done));

    measured = measure(finished, await mock.leaseReadyTimes(), await mock.callsTo("GetLease"));
    await Promise.all(finished.map((wait) => client.deleteLease(wait.name)));
  } finally {
    await client.close();
    await mock.close();
  }
  return describe(measured, settings);
}

// Runs the create, wait and release path once per exporter with no ready delay, so that neither
// process compiles that code during the measured waits, then empties the call log.
async function warmUp(client: JumpstarterClient, mock: MockProcess, exporters: readonly string[]): Promise<void> {
  await mock.setReadyDelay(0);
  await Promise.all(
    exporters.map(async (exporter) => {
      const lease = await client.createLease({ exporterName: exporter, duration: LEASE_DURATION_MS });
      await client.waitForLease(lease.name, { timeoutMs: WAIT_LIMIT_MS });
      await client.getLease(lease.name);
      await client.deleteLease(lease.name);
    }),
  );
  await mock.clearCalls();
}

// Sets the mock's ready delay and creates a lease on each exporter, alternating the two policies.
// Resolves once every lease exists, because the mock applies its ready delay when a lease takes an
// exporter, which CreateLease does at once here, and the next configuration changes that delay.
async function startConfiguration(client: JumpstarterClient, mock: MockProcess, exporters: readonly string[], readyDelayMs: number): Promise<{ done: Promise<LeaseWait[]> }> {
  await mock.setReadyDelay(readyDelayMs);
  const started = await Promise.all(
    exporters.map(async (exporter, index) => {
      // Spaced starts keep the fixed pollers from all reading at the same instant, which users
      // who start their leases independently would not do either.
      await sleep(index * LEASE_SPACING_MS);
      return startWait(client, exporter, index % 2 === 0 ? "sdk" : "fixed", readyDelayMs);
    }),
  );
  return { done: Promise.all(started.map((wait) => wait.done)) };
}

// Creates a lease and starts waiting for it as soon as CreateLease returns.
async function startWait(client: JumpstarterClient, exporter: string, policy: Policy, readyDelayMs: number): Promise<{ done: Promise<LeaseWait> }> {
  const lease = await client.createLease({ exporterName: exporter, duration: LEASE_DURATION_MS });
  const startedAtMs = Date.now();
  const budget = new TimeBudget(`waiting for lease ${lease.name}, Ready after ${readyDelayMs} ms`, readyDelayMs + WAIT_LIMIT_MS);
  const wait = policy === "sdk" ? client.waitForLease(lease.name, { timeoutMs: readyDelayMs + WAIT_LIMIT_MS }) : pollEveryFiveSeconds(client, lease.name, budget);
  const done = wait.then(() => ({ policy, readyDelayMs, name: lease.name, startedAtMs, resolvedAtMs: Date.now() }));
  // The caller awaits this promise only after creating the other leases, and a rejection before
  // then must not count as unhandled.
  done.catch(() => undefined);
  return { done };
}

// The `jmp` policy: read the lease, and read it again 5 s after each read that found it not Ready.
async function pollEveryFiveSeconds(client: JumpstarterClient, name: string, budget: TimeBudget): Promise<void> {
  for (;;) {
    const lease = await client.getLease(name);
    if (isLeaseReady(lease)) return;
    if (isLeaseEnded(lease)) throw new Error(`lease ${name} ended before it became Ready, which no lease of the benchmark lab should do.`);
    budget.check();
    await sleep(FIXED_POLL_INTERVAL_MS);
  }
}

// Both processes read the system clock through Date, so the mock's times and the benchmark's
// compare to the millisecond.
function measure(waits: readonly LeaseWait[], readyTimes: Record<string, number | null>, reads: readonly MockProcessCall[]): MeasuredWait[] {
  const readsByLease = new Map<string, number[]>();
  for (const read of reads) {
    const times = readsByLease.get(read.name) ?? [];
    times.push(read.atMs);
    readsByLease.set(read.name, times);
  }

  return waits.map((wait) => {
    const readyAtMs = readyTimes[wait.name];
    if (readyAtMs === null || readyAtMs === undefined) throw new Error(`the mock has no Ready time for lease ${wait.name}, although the wait for it ended.`);
    const times = readsByLease.get(wait.name) ?? [];
    if (times.length === 0) throw new Error(`the mock logged no GetLease call for lease ${wait.name}.`);
    // Both policies stop reading once a read returns Ready, so the last read is the one that saw it.
    const seenAtMs = times[times.length - 1]!;
    const steady = times.filter((at) => at - wait.startedAtMs >= STEADY_AFTER_MS);
    return {
      ...wait,
      readyAfterMs: readyAtMs - wait.startedAtMs,
      delayMs: wait.resolvedAtMs - readyAtMs,
      untilSeenMs: seenAtMs - readyAtMs,
      reads: times.length,
      readsPerMinute: (times.length * 60_000) / (wait.resolvedAtMs - wait.startedAtMs),
      steadyIntervalsMs: steady.slice(1).map((at, index) => at - steady[index]!),
    };
  });
}

/** Medians of a simulation of a policy's reads, from {@link simulateSchedule}. */
interface ScheduleModel {
  /** From Ready to the first read at or after it, in milliseconds. */
  delayMs: number;
  /** Between that read and the one before it, in milliseconds. */
  gapMs: number;
}

/**
 * Simulates the policy's reads with no time spent per read, for Ready times taken in turn from
 * `readyAfterMs` (each measured lease's time from the start of its wait to Ready). The SDK's
 * schedule uses `pollDelayMs` with random jitter.
 */
function simulateSchedule(policy: Policy, readyAfterMs: readonly number[]): ScheduleModel {
  const nextDelay = policy === "sdk" ? (attempt: number) => pollDelayMs(attempt, Math.random()) : () => FIXED_POLL_INTERVAL_MS;
  const draws = policy === "sdk" ? MODEL_DRAWS : readyAfterMs.length;
  const delays: number[] = [];
  const gaps: number[] = [];
  for (let draw = 0; draw < draws; draw++) {
    const readyAtMs = readyAfterMs[draw % readyAfterMs.length]!;
    let readAtMs = 0;
    let gapMs = 0;
    for (let attempt = 0; readAtMs < readyAtMs; attempt++) {
      gapMs = nextDelay(attempt);
      readAtMs += gapMs;
    }
    delays.push(readAtMs - readyAtMs);
    gaps.push(gapMs);
  }
  return { delayMs: summarize(delays).median, gapMs: summarize(gaps).median };
}

function describe(measured: readonly MeasuredWait[], settings: Settings): string {
  const select = (policy: Policy, readyDelayMs: number): MeasuredWait[] =>
    measured.filter((wait) => wait.policy === policy && wait.readyDelayMs === readyDelayMs);
  const median = (waits: readonly MeasuredWait[], figure: (wait: MeasuredWait) => number): number => summarize(waits.map(figure)).median;
  // The simulation draws random jitter, so each configuration is simulated once and its result reused.
  const models = new Map<string, ScheduleModel>();
  const model = (policy: Policy, readyDelayMs: number): ScheduleModel => {
    const key = `${policy} ${readyDelayMs}`;
    if (!models.has(key)) models.set(key, simulateSchedule(policy, select(policy, readyDelayMs).map((wait) => wait.readyAfterMs)));
    return models.get(key)!;
  };

  const rows = settings.readyDelaysMs.flatMap((readyDelayMs) =>
    (["sdk", "fixed"] as const).map((policy) => {
      const waits = select(policy, readyDelayMs);
      return [
        formatSeconds(readyDelayMs),
        POLICY_LABELS[policy],
        formatSummary(summarize(waits.map((wait) => wait.delayMs))),
        formatSummary(summarize(waits.map((wait) => wait.untilSeenMs))),
        formatNumber(model(policy, readyDelayMs).delayMs),
        formatSummary(summarize(waits.map((wait) => wait.reads))),
      ];
    }),
  );

  const targetLines = TARGET_READY_DELAYS_MS.filter((readyDelayMs) => settings.readyDelaysMs.includes(readyDelayMs)).map((readyDelayMs) => {
    const waits = select("sdk", readyDelayMs);
    const delayMs = median(waits, (wait) => wait.delayMs);
    const modelMs = model("sdk", readyDelayMs).delayMs;
    const line = `- Ready after ${formatSeconds(readyDelayMs)}: ${verdict(delayMs < TARGET_DELAY_MS)} (${formatNumber(delayMs)} ms measured, ${formatNumber(modelMs)} ms from the schedule alone)`;
    // The leases of one run are a small sample of the jitter, so a median near the target can fall
    // on either side of it from run to run.
    const borderline = delayMs < TARGET_DELAY_MS && modelMs >= TARGET_DELAY_MS;
    return borderline ? `${line}. The schedule alone misses the target here, so another run may miss it too.` : `${line}.`;
  });
  const missed = TARGET_READY_DELAYS_MS.filter(
    (readyDelayMs) => settings.readyDelaysMs.includes(readyDelayMs) && median(select("sdk", readyDelayMs), (wait) => wait.delayMs) >= TARGET_DELAY_MS,
  ).map((readyDelayMs) => ({ readyDelayMs, model: model("sdk", readyDelayMs) }));
  const sdkShare = summarize(measured.filter((wait) => wait.policy === "sdk").map((wait) => wait.delayMs - wait.untilSeenMs));

  return [
    `A mock controller in a child process makes each lease Ready a fixed time after CreateLease (\`setReadyDelay\`), and the benchmark process waits for it in one of two ways over one client: ` +
      `\`client.waitForLease\` with its default schedule, or the policy of \`jmp\`, a \`client.getLease\` call every ${FIXED_POLL_INTERVAL_MS / 1000} s until the lease is Ready. ` +
      `Each wait starts when CreateLease returns. Every Ready delay has ${settings.leasesPerPolicy} leases per policy, each on its own exporter, started ${LEASE_SPACING_MS} ms apart and alternating between the policies, so that the fixed pollers do not all read at the same instant. ` +
      `The Ready delays under ${formatSeconds(LONG_WAIT_MS)} run one after another, and any longer one runs alongside them, started first. ` +
      `_Delay_ runs from Ready on the mock (the lease's \`effective_begin_time\`, which the mock sets to the millisecond) to the end of the wait in the benchmark process. Both processes read the same system clock. ` +
      `_Until the read that saw Ready_ is the part of it before the mock received that read, taken from the mock's call log, and the rest is the response and the SDK's own work. ` +
      `The mock logs a read before it authenticates it and only then looks at the lease, so a read that arrived a few milliseconds before Ready can see it, and this figure can be slightly negative. ` +
      `_Schedule alone_ is the median delay of a simulation of the policy's reads that spend no time per read, with the Ready times that the leases saw, counted from the start of each wait (${formatNumber(MODEL_DRAWS)} draws of the SDK's jitter). ` +
      `Figures are the median (min–max) over the leases.`,
    "",
    markdownTable(["Ready after", "Policy", "Delay, ms", "Until the read that saw Ready, ms", "Schedule alone, ms", "GetLease calls per lease"], rows),
    ...alignmentNote(settings),
    "",
    `Target: a median delay under ${TARGET_DELAY_MS} ms with \`waitForLease\`:`,
    "",
    ...targetLines,
    ...(missed.length > 0 ? ["", explainMissedLatency(missed, sdkShare)] : []),
    "",
    describeLongWait(measured, settings, select),
  ].join("\n");
}

function describeLongWait(
  measured: readonly MeasuredWait[],
  settings: Settings,
  select: (policy: Policy, readyDelayMs: number) => MeasuredWait[],
): string {
  const longDelays = settings.readyDelaysMs.filter((readyDelayMs) => readyDelayMs >= LONG_WAIT_MS);
  const heading = "### Calls per minute in a long wait";
  if (longDelays.length === 0) {
    return `${heading}\n\nNot measured in a quick run, which has no Ready delay of ${formatSeconds(LONG_WAIT_MS)} or more.`;
  }

  const steadyRate = (waits: readonly MeasuredWait[]): number => 60_000 / summarize(waits.flatMap((wait) => wait.steadyIntervalsMs)).median;
  const rows = longDelays.flatMap((readyDelayMs) =>
    (["sdk", "fixed"] as const).map((policy) => {
      const waits = select(policy, readyDelayMs);
      const intervals = summarize(waits.flatMap((wait) => wait.steadyIntervalsMs));
      return [
        formatSeconds(readyDelayMs),
        POLICY_LABELS[policy],
        formatSummary(summarize(waits.map((wait) => wait.reads))),
        formatSummary(summarize(waits.map((wait) => wait.readsPerMinute)), 1),
        formatSummary({ ...intervals, median: intervals.median / 1000, min: intervals.min / 1000, max: intervals.max / 1000 }, 3),
        formatNumber(steadyRate(waits), 1),
      ];
    }),
  );

  const longest = Math.max(...longDelays);
  const sdk = select("sdk", longest);
  const fixed = select("fixed", longest);
  const sdkRate = steadyRate(sdk);
  const fixedRate = steadyRate(fixed);
  const wholeSdk = summarize(sdk.map((wait) => wait.readsPerMinute)).median;
  const wholeFixed = summarize(fixed.map((wait) => wait.readsPerMinute)).median;
  const extraReads = summarize(sdk.map((wait) => wait.reads)).median - summarize(fixed.map((wait) => wait.reads)).median;
  // Once the SDK's schedule is capped, both policies sleep 5 s after each read, so their intervals
  // differ only by how long the reads take, which depends on the load on the mock and not on the
  // policy. A rate up to 1% above the fixed poll's therefore counts as the same rate.
  const met = sdkRate <= fixedRate * (1 + RATE_TOLERANCE);

  return [
    heading,
    "",
    `_Whole wait_ divides a lease's GetLease calls by the time from the start of its wait to its end. _After the first ${STEADY_AFTER_MS / 1000} s_ uses the intervals between consecutive reads that both arrived ${STEADY_AFTER_MS / 1000} s or more after the wait began, as the mock logged them (median (min–max) over all such intervals), and gives the rate as 60 s divided by their median.`,
    "",
    markdownTable(["Ready after", "Policy", "GetLease calls per lease", "Calls per minute, whole wait", "Interval between reads after the first 10 s, s", "Calls per minute after the first 10 s"], rows),
    "",
    `Target: no more calls per minute than the fixed poll once the wait is long, read as the rate after the first ${STEADY_AFTER_MS / 1000} s of the ${formatSeconds(longest)} wait, within ${RATE_TOLERANCE * 100}% because both policies then sleep ${FIXED_POLL_INTERVAL_MS / 1000} s between reads and differ only in how long the reads take: ` +
      `${verdict(met)} (${formatNumber(sdkRate, 1)} against ${formatNumber(fixedRate, 1)}). ` +
      `Over the whole wait the SDK makes ${formatNumber(wholeSdk, 1)} calls per minute against ${formatNumber(wholeFixed, 1)}: its faster reads at the start cost ${formatNumber(extraReads, 1)} extra calls per lease (median), a fixed amount, ` +
      `so its rate over the whole wait approaches the fixed poll's as the wait grows.`,
  ].join("\n");
}

// Explains a missed latency target from the schedule: the read times that it allows, and how much
// of the delay the SDK's own work takes.
function explainMissedLatency(missed: readonly { readyDelayMs: number; model: ScheduleModel }[], sdkShare: Summary): string {
  const windows = readWindows(7)
    .map(([from, to]) => (from === to ? formatSeconds(from, 2) : `${formatNumber(from / 1000, 2)}–${formatNumber(to / 1000, 2)} s`))
    .join(", ");
  const fixedReadsPerMinute = 60_000 / FIXED_POLL_INTERVAL_MS;
  const gapAtTargetMs = 2 * TARGET_DELAY_MS;
  return [
    `### Why the latency target was missed`,
    "",
    `Of each delay, the part after the read that saw Ready reached the mock, which is the response and the SDK's own work, takes ${formatSummary(sdkShare)} ms over all SDK leases. The rest is time spent waiting for the next read. ` +
      `The schedule waits up to ${DEFAULT_POLL_MIN_DELAY_MS} ms before its second read, doubles that bound after each read, picks each delay from the upper half of its bound, and caps it at ${formatNumber(DEFAULT_POLL_MAX_DELAY_MS)} ms. ` +
      `Its first reads therefore fall in these windows after the wait begins: ${windows}. ` +
      `In the simulation the two reads around Ready are a median ${missed.map(({ readyDelayMs, model }) => `${formatNumber(model.gapMs)} ms apart for a lease Ready after ${formatSeconds(readyDelayMs)}`).join(", and ")}, ` +
      `and a Ready time that falls between two reads waits for the rest of that gap. ` +
      `The two targets pull against each other. A median delay under ${TARGET_DELAY_MS} ms for a Ready time that falls at random between two reads needs reads at most ${gapAtTargetMs} ms apart, ` +
      `${formatNumber(60_000 / gapAtTargetMs)} calls per minute where the fixed poll makes ${formatNumber(fixedReadsPerMinute)}. ` +
      `The SDK spends its extra reads in the first seconds of a wait, and after its first ${firstCappedAttempt()} delays it waits exactly ${formatSeconds(DEFAULT_POLL_MAX_DELAY_MS)} between reads, as the fixed poll does. ` +
      `A caller that needs a short delay at any time can pass \`maxDelayMs: ${gapAtTargetMs}\`, so that reads come every ${gapAtTargetMs} ms once the schedule reaches its cap, at that cost in calls.`,
  ].join("\n");
}

// Index of the first delay that the cap fixes whatever the jitter, which is also the number of
// delays before it.
function firstCappedAttempt(): number {
  let attempt = 0;
  while (pollDelayMs(attempt, 0) < DEFAULT_POLL_MAX_DELAY_MS) attempt++;
  return attempt;
}

// Ready delays that fall on a read of the fixed poll make it look faster than it is in general.
function alignmentNote(settings: Settings): string[] {
  const aligned = settings.readyDelaysMs.filter((readyDelayMs) => readyDelayMs % FIXED_POLL_INTERVAL_MS === 0);
  if (aligned.length === 0) return [];
  return [
    "",
    `The fixed poll reads at whole multiples of ${FIXED_POLL_INTERVAL_MS / 1000} s after its wait begins, plus the time that each read takes, so at ${aligned.map((readyDelayMs) => formatSeconds(readyDelayMs)).join(" and ")} its read arrives just after Ready, ` +
      `or a full interval later when it arrives first. A lease whose Ready time falls at random between two reads waits ${FIXED_POLL_INTERVAL_MS / 2000} s on average under the fixed poll.`,
  ];
}

// The earliest and latest time of each of the first `count` reads of the SDK's schedule, in
// milliseconds after the wait begins, from the lowest and highest jitter.
function readWindows(count: number): [number, number][] {
  const windows: [number, number][] = [[0, 0]];
  for (let attempt = 0; windows.length < count; attempt++) {
    const [from, to] = windows[windows.length - 1]!;
    windows.push([from + pollDelayMs(attempt, 0), to + pollDelayMs(attempt, 1)]);
  }
  return windows;
}

function formatSeconds(ms: number, digits = 1): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? formatNumber(seconds) : formatNumber(seconds, digits)} s`;
}
