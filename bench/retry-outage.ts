// Estimates how often the default retry policy gives up during a controller outage: a read whose
// first attempt fails at the start of an outage of D seconds fails when all of its attempts fall
// inside the outage. Attempts themselves take no time here, as a refused connection returns at once.
//
// Run: npx tsx bench/retry-outage.ts [trials]
import { DEFAULT_RETRY_POLICY, backoffDelayMs } from "../src/retry.js";

const trials = Number(process.argv[2] ?? 200_000);
const outagesMs = [1_000, 2_000, 3_000, 5_000, 8_000];

const totals: number[] = [];
for (let trial = 0; trial < trials; trial++) {
  let waitedMs = 0;
  for (let retry = 1; retry < DEFAULT_RETRY_POLICY.maxAttempts; retry++) {
    waitedMs += backoffDelayMs(DEFAULT_RETRY_POLICY, retry);
  }
  totals.push(waitedMs);
}

const meanMs = totals.reduce((sum, value) => sum + value, 0) / trials;
console.log(`policy ${JSON.stringify(DEFAULT_RETRY_POLICY)}, ${trials} trials`);
console.log(`time from the first to the last attempt: mean ${Math.round(meanMs)} ms, max ${totals.reduce((max, value) => Math.max(max, value), 0)} ms`);
for (const outageMs of outagesMs) {
  const failed = totals.filter((total) => total < outageMs).length;
  console.log(`outage of ${outageMs / 1000} s: the read fails in ${((100 * failed) / trials).toFixed(2)}% of trials`);
}
