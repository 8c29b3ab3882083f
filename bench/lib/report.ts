/** Settings and helpers that the runner passes to every benchmark. */
export interface BenchmarkContext {
  /** Fewer repetitions and smaller sizes, for a smoke run in CI. */
  quick: boolean;
  /** Absolute path of the repository root. */
  repoRoot: string;
  /** Prints a progress line to stderr. */
  log(message: string): void;
}

/**
 * One benchmark: a file in bench/benchmarks/ that exports `benchmark`. The runner loads every such
 * file and runs them in `number` order, so adding a benchmark means adding a file.
 */
export interface Benchmark {
  /** Position in BENCHMARKS.md, matching the numbering of the benchmark list. */
  number: number;
  /** Short name for `--only`, such as `unary`. */
  id: string;
  /** Heading in BENCHMARKS.md. */
  title: string;
  /** Runs the measurements and returns the section body in Markdown. */
  run(context: BenchmarkContext): Promise<string>;
}

/** Renders a Markdown table. Cells must not contain `|`. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Returns `met` or `missed` for a target check, for the target lines of each section. */
export function verdict(met: boolean): string {
  return met ? "met" : "**missed**";
}
