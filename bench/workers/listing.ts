// Lists every exporter of a mock controller in a fresh process started with --expose-gc, and
// reports items per second and heap figures. One process per configuration keeps the heap of one
// configuration out of the next one's figures.
import { JumpstarterClient } from "@jumpstarter/sdk";
import { collectGarbage, TimeBudget } from "../lib/budget.js";
import { readWorkerInput, sendWorkerResult } from "../lib/child-process.js";

/** Input of the listing worker. */
export interface ListingInput {
  endpoint: string;
  namespace: string;
  token: string;
  pageSize: number;
  /** Number of exporters that the mock holds; every run must see all of them. */
  total: number;
  /** Timed runs after one warm-up run. */
  repetitions: number;
  /** Runs with forced GCs that measure the live heap, after the timed ones. */
  livePasses: number;
  /** Keep every item in an array, as `toArray()` does, to show what buffering would cost. */
  retain: boolean;
}

/** Output of the listing worker. Heap figures are bytes above the heap after GC before listing. */
export interface ListingOutput {
  /** One value per timed run. */
  itemsPerSecond: number[];
  /** Largest `heapUsed` sampled after each page, garbage included: one value per timed run. */
  peakHeapBytes: number[];
  /** Largest `heapUsed` right after a forced GC, at ten points through a listing: one value per live pass. */
  liveHeapBytes: number[];
}

const RUN_LIMIT_MS = 120_000;
const LIVE_CHECKPOINTS = 10;

await sendWorkerResult(async (): Promise<ListingOutput> => {
  const input = readWorkerInput<ListingInput>();
  if (!collectGarbage()) throw new Error("the listing worker needs --expose-gc to measure the heap");
  const client = new JumpstarterClient({ endpoint: input.endpoint, namespace: input.namespace, token: input.token });
  try {
    await listAll(client, input, () => {});

    collectGarbage();
    const baseline = process.memoryUsage().heapUsed;
    const itemsPerSecond: number[] = [];
    const peakHeapBytes: number[] = [];
    for (let run = 0; run < input.repetitions; run++) {
      let peak = 0;
      const start = performance.now();
      await listAll(client, input, () => {
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
      });
      itemsPerSecond.push(input.total / ((performance.now() - start) / 1000));
      peakHeapBytes.push(peak);
      collectGarbage();
    }

    // Forcing GC during the timed runs would slow them down, so live data is measured in runs of their own.
    const pages = Math.ceil(input.total / input.pageSize);
    const every = Math.max(1, Math.floor(pages / LIVE_CHECKPOINTS));
    const liveHeapBytes: number[] = [];
    for (let pass = 0; pass < input.livePasses; pass++) {
      let page = 0;
      let live = 0;
      await listAll(client, input, () => {
        if (++page % every !== 0) return;
        collectGarbage();
        live = Math.max(live, process.memoryUsage().heapUsed - baseline);
      });
      liveHeapBytes.push(live);
    }
    return { itemsPerSecond, peakHeapBytes, liveHeapBytes };
  } finally {
    await client.close();
  }
});

// Lists every exporter through `for await`, as most callers would, and calls `afterPage` after the
// last item of each page. With `retain` the items stay in an array until the listing ends.
async function listAll(client: JumpstarterClient, input: ListingInput, afterPage: () => void): Promise<void> {
  const budget = new TimeBudget(`listing ${input.total} exporters in pages of ${input.pageSize}`, RUN_LIMIT_MS);
  const retained: unknown[] = [];
  let count = 0;
  let nameLengths = 0;
  for await (const exporter of client.listExporters({ pageSize: input.pageSize, maxItems: input.total })) {
    nameLengths += exporter.name.length;
    if (input.retain) retained.push(exporter);
    if (++count % input.pageSize === 0 || count === input.total) {
      afterPage();
      budget.check();
    }
  }
  if (count !== input.total || nameLengths === 0) {
    throw new Error(`listed ${count} exporters, expected ${input.total}; the mock's lab does not match the benchmark.`);
  }
  // The array must stay reachable until the last sample, or GC would free it early.
  if (retained.length !== (input.retain ? count : 0)) throw new Error("retained items were lost");
}
