/** Median and spread of repeated measurements of one figure. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Number of measurements. */
  count: number;
}

/**
 * Summarizes repeated measurements.
 *
 * @throws RangeError for an empty list or a value that is not finite.
 */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError("cannot summarize an empty list of measurements");
  for (const value of values) {
    if (!Number.isFinite(value)) throw new RangeError(`invalid measurement ${value}: expected a finite number`);
  }
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), min: sorted[0]!, max: sorted[sorted.length - 1]!, count: sorted.length };
}

/** Formats a summary as `median (min–max)` with `digits` decimals, or as the value alone for one measurement. */
export function formatSummary(summary: Summary, digits = 0): string {
  const format = (value: number): string => formatNumber(value, digits);
  if (summary.count === 1) return format(summary.median);
  return `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})`;
}

/** Formats a number with thousands separators and a fixed number of decimals. */
export function formatNumber(value: number, digits = 0): string {
  // A small negative value would round to "-0.0", which reads as a sign error.
  const rounded = Number(value.toFixed(digits)) || 0;
  return rounded.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Formats a ratio such as `1.04x (0.98–1.10)`. */
export function formatRatio(summary: Summary): string {
  return `${summary.median.toFixed(2)}x (${summary.min.toFixed(2)}–${summary.max.toFixed(2)})`;
}

/** Divides two lists of paired measurements element by element, such as the runs of one repetition. */
export function pairedRatios(numerators: readonly number[], denominators: readonly number[]): number[] {
  if (numerators.length !== denominators.length) {
    throw new RangeError(`cannot pair ${numerators.length} measurements with ${denominators.length}`);
  }
  return numerators.map((value, index) => value / denominators[index]!);
}

/**
 * Returns the value below which `fraction` of the measurements lie, such as 0.99 for the 99th
 * percentile, interpolated linearly between the two nearest ranks.
 *
 * @throws RangeError for an empty list or a fraction outside [0, 1].
 */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) throw new RangeError("cannot take a percentile of an empty list of measurements");
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`invalid fraction ${fraction}: expected a number from 0 to 1`);
  return quantile([...values].sort((a, b) => a - b), fraction);
}

// Linear interpolation between the two nearest ranks of a sorted list.
function quantile(sorted: readonly number[], fraction: number): number {
  const position = (sorted.length - 1) * fraction;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}
