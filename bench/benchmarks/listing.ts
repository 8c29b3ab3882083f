import { JumpstarterClient } from "@jumpstarter/sdk";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { connectRaw } from "../../test/helpers/raw-client.js";
import { TimeBudget } from "../lib/budget.js";
import { runWorker } from "../lib/child-process.js";
import { identityHeaders } from "../lib/clients.js";
import { startMockProcess, type MockProcess } from "../lib/mock-process.js";
import { markdownTable, verdict, type Benchmark, type BenchmarkContext } from "../lib/report.js";
import { formatNumber, formatRatio, formatSummary, pairedRatios, summarize } from "../lib/stats.js";
import type { ListingInput, ListingOutput } from "../workers/listing.js";

interface Settings {
  totals: number[];
  pageSizes: number[];
  /** Timed listings per configuration, after one warm-up listing. */
  repetitions: number;
  /** Listings with forced GCs per configuration, for the live heap. */
  livePasses: number;
  /** Exporters, page size and repetitions of the prefetch comparison. */
  prefetch: { total: number; pageSize: number; repetitions: number };
}

const FULL: Settings = {
  totals: [10_000, 100_000],
  pageSizes: [100, 500, 1_000],
  repetitions: 5,
  livePasses: 3,
  prefetch: { total: 10_000, pageSize: 100, repetitions: 7 },
};
const QUICK: Settings = {
  totals: [1_000, 5_000],
  pageSizes: [100, 1_000],
  repetitions: 2,
  livePasses: 1,
  prefetch: { total: 1_000, pageSize: 100, repetitions: 2 },
};

/** Server latency per ListExporters call in the prefetch comparison, in milliseconds. */
const PAGE_LATENCY_MS = 5;
/** Time that the consumer spends on each page in the prefetch comparison, in milliseconds. */
const CONSUMER_WORK_MS = [0, 5];
const WORKER_LIMIT_MS = 600_000;
const LISTING_LIMIT_MS = 120_000;
const MIB = 2 ** 20;

interface Configuration {
  total: number;
  pageSize: number;
  retain: boolean;
  output: ListingOutput;
}

export const benchmark: Benchmark = {
  number: 2,
  id: "listing",
  title: "Listing: throughput, heap and prefetch",
  run: runListing,
};

async function runListing(context: BenchmarkContext): Promise<string> {
  const settings = context.quick ? QUICK : FULL;
  const configurations: Configuration[] = [];
  for (const total of settings.totals) {
    const mock = await startMockProcess({ exporterCount: total });
    try {
      for (const pageSize of settings.pageSizes) {
        configurations.push(await measureConfiguration(context, mock, { total, pageSize, retain: false }, settings.repetitions, settings.livePasses));
      }
      // A listing that keeps every item shows what the heap figures look like when they do grow.
      const largest = Math.max(...settings.pageSizes);
      configurations.push(await measureConfiguration(context, mock, { total, pageSize: largest, retain: true }, 1, 1));
    } finally {
      await mock.close();
    }
  }
  const prefetch = await comparePrefetch(context, settings.prefetch);
  return [describeScale(configurations, settings), "", prefetch].join("\n");
}

async function measureConfiguration(
  context: BenchmarkContext,
  mock: MockProcess,
  shape: { total: number; pageSize: number; retain: boolean },
  repetitions: number,
  livePasses: number,
): Promise<Configuration> {
  context.log(`listing: ${shape.total} exporters in pages of ${shape.pageSize}${shape.retain ? ", kept in an array" : ""}`);
  const input: ListingInput = { endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token, ...shape, repetitions, livePasses };
  const script = fileURLToPath(new URL("../workers/listing.ts", import.meta.url));
  const output = await runWorker<ListingOutput>(script, input, { nodeFlags: ["--expose-gc"], timeoutMs: WORKER_LIMIT_MS, cwd: context.repoRoot });
  await mock.clearCalls();
  return { ...shape, output };
}

function describeScale(configurations: readonly Configuration[], settings: Settings): string {
  const mib = (bytes: number[]): string => formatSummary(summarize(bytes.map((value) => value / MIB)), 1);
  const rows = configurations.map((configuration) => [
    formatNumber(configuration.total),
    formatNumber(configuration.pageSize),
    configuration.retain ? "kept in an array (`toArray()`)" : "`for await`, item by item",
    configuration.retain ? "–" : formatSummary(summarize(configuration.output.itemsPerSecond)),
    mib(configuration.output.peakHeapBytes),
    mib(configuration.output.liveHeapBytes),
  ]);
  const table = markdownTable(["Exporters", "Page size", "Consumer", "Items/s", "Peak heap, MiB", "Live heap after GC, MiB"], rows);

  // Flat: the live heap of the largest listing stays within 2 MiB of the smallest, per page size.
  const streaming = configurations.filter((configuration) => !configuration.retain);
  const smallest = Math.min(...settings.totals);
  const largest = Math.max(...settings.totals);
  const growth = settings.pageSizes.map((pageSize) => {
    const live = (total: number): number =>
      summarize(streaming.find((c) => c.total === total && c.pageSize === pageSize)!.output.liveHeapBytes).median;
    return live(largest) - live(smallest);
  });
  const worstGrowth = Math.max(...growth);
  const growthMib = formatNumber(worstGrowth / MIB, 1);

  return [
    `Each configuration runs in a fresh Node process started with \`--expose-gc\`, against a mock controller in another process that holds the exporters (four labels each). ` +
      `Each process lists once to warm up, then makes ${settings.repetitions} timed listings and ${settings.livePasses} with forced GCs; each figure is the median (min–max) of those listings. ` +
      `Heap figures are \`process.memoryUsage().heapUsed\` above the heap after a forced GC before the first timed listing. ` +
      `_Peak heap_ is the largest value sampled after each page of the timed listings, so it includes garbage that V8 has not collected yet. ` +
      `_Live heap_ is the largest value right after a forced GC at ten points through a listing, which leaves only what the iteration still holds. ` +
      `The rows that keep every item in an array show that these figures do grow when a listing is buffered (one listing of each kind, so no items/s). ` +
      `Peak heap can grow with the length of a listing even when nothing is kept, because it counts garbage that V8 has not collected yet, and V8 collects its old generation far less often than its young one. The live heap is the figure that shows retention. ` +
      `The only state that the iteration keeps is the set of page tokens seen, which detects a controller that repeats a token; it grows by one token per page, well under a MiB here.`,
    "",
    table,
    "",
    `Target: heap flat as the listing grows from ${formatNumber(smallest)} to ${formatNumber(largest)} exporters, read as live heap growing by less than 2 MiB at every page size: ` +
      `${verdict(worstGrowth < 2 * MIB)} (largest growth of the median ${growthMib} MiB).`,
  ].join("\n");
}

async function comparePrefetch(context: BenchmarkContext, settings: Settings["prefetch"]): Promise<string> {
  const mock = await startMockProcess({ exporterCount: settings.total });
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token });
  const raw = connectRaw(mock.endpoint, { headers: identityHeaders(mock) });
  const parent = `namespaces/${mock.namespace}`;
  const rows: string[][] = [];
  let balancedSpeedup = 0;
  try {
    await mock.delayAll("ListExporters", PAGE_LATENCY_MS);

    // The SDK fetches the next page while the consumer works on the current one.
    const prefetching = async (consume: () => Promise<void>): Promise<number> => {
      const budget = new TimeBudget("prefetching listing", LISTING_LIMIT_MS);
      let count = 0;
      for await (const page of client.listExporters({ pageSize: settings.pageSize, maxItems: settings.total }).byPage()) {
        count += page.items.length;
        await consume();
        budget.check();
      }
      return count;
    };
    // byPage() prefetches too, so the sequential baseline is the raw client: request a page, wait
    // for it, consume it, and only then request the next one.
    const sequential = async (consume: () => Promise<void>): Promise<number> => {
      const budget = new TimeBudget("sequential listing", LISTING_LIMIT_MS);
      let count = 0;
      let pageToken = "";
      for (let page = 0; page < Math.ceil(settings.total / settings.pageSize) + 1; page++) {
        const response = await raw.client.listExporters({ parent, pageSize: settings.pageSize, pageToken });
        count += response.exporters.length;
        await consume();
        budget.check();
        pageToken = response.nextPageToken;
        if (pageToken === "") break;
      }
      return count;
    };

    for (const workMs of CONSUMER_WORK_MS) {
      const consume = workMs === 0 ? async () => {} : () => sleep(workMs);
      const timed = async (list: (consume: () => Promise<void>) => Promise<number>): Promise<number> => {
        const start = performance.now();
        const count = await list(consume);
        if (count !== settings.total) throw new Error(`listed ${count} exporters, expected ${settings.total}: the mock's lab does not match the benchmark settings.`);
        return performance.now() - start;
      };

      await timed(prefetching);
      await timed(sequential);
      const prefetchMs: number[] = [];
      const sequentialMs: number[] = [];
      for (let repetition = 0; repetition < settings.repetitions; repetition++) {
        context.log(`listing: prefetch against sequential, consumer ${workMs} ms per page, repetition ${repetition + 1} of ${settings.repetitions}`);
        // Alternating which one goes first spreads any drift of the machine over both.
        if (repetition % 2 === 0) {
          prefetchMs.push(await timed(prefetching));
          sequentialMs.push(await timed(sequential));
        } else {
          sequentialMs.push(await timed(sequential));
          prefetchMs.push(await timed(prefetching));
        }
      }
      const speedup = summarize(pairedRatios(sequentialMs, prefetchMs));
      if (workMs === PAGE_LATENCY_MS) balancedSpeedup = speedup.median;
      rows.push([
        `${workMs} ms`,
        formatSummary(summarize(sequentialMs)),
        formatSummary(summarize(prefetchMs)),
        formatRatio(speedup),
      ]);
    }
  } finally {
    raw.close();
    await client.close();
    await mock.close();
  }

  const pages = Math.ceil(settings.total / settings.pageSize);
  return [
    `### Prefetch against sequential paging`,
    "",
    `${formatNumber(settings.total)} exporters in ${pages} pages of ${settings.pageSize}, with ${PAGE_LATENCY_MS} ms of server latency per page (\`mock.delayAll("ListExporters", ${PAGE_LATENCY_MS})\`), in the benchmark process. ` +
      `The consumer awaits a timer of the given length on each page, standing in for work such as writing the page to a database. ` +
      `_Prefetching_ is \`listExporters().byPage()\`, which requests the next page before it hands over the current one. ` +
      `\`byPage()\` cannot be the sequential baseline because it prefetches as well, so _sequential_ is the raw connect client in a loop that requests a page only after the consumer has finished the previous one. ` +
      `Times are the median (min–max) of ${settings.repetitions} listings each, and the speedup is taken listing by listing.`,
    "",
    markdownTable(["Consumer work per page", "Sequential, ms", "Prefetching, ms", "Speedup"], rows),
    "",
    `Prefetching can only hide the server's latency behind the consumer's own time. With a consumer that does nothing there is nothing to overlap, so that row shows only what the SDK's listing path costs over the raw client's loop. ` +
      `Target: at least 1.3x with ${PAGE_LATENCY_MS} ms of consumer work per page: ${verdict(balancedSpeedup >= 1.3)} (${balancedSpeedup.toFixed(2)}x).`,
  ].join("\n");
}
