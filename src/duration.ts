import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "./errors.js";

/**
 * A length of time: a number of milliseconds, or a Go/Kubernetes duration string such as `"90s"`,
 * `"1h30m"` or `"1.5h"` (units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`).
 */
export type DurationInput = number | string;

/** A point in time: a `Date`, or an RFC 3339 string such as `"2026-12-04T10:00:00Z"`. */
export type TimeInput = Date | string;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION_STRING = /^([0-9]*\.?[0-9]+|[0-9]+\.)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a duration into whole milliseconds (sub-millisecond parts are rounded to the nearest
 * millisecond). `what` names the option in error messages.
 *
 * @throws InvalidArgumentError for a malformed, non-finite, zero or negative duration.
 */
export function parseDurationMs(input: DurationInput, what = "duration"): number {
  let ms: number;
  if (typeof input === "number") {
    ms = input;
  } else if (typeof input === "string") {
    ms = parseDurationString(input, what);
  } else {
    throw new InvalidArgumentError(
      `invalid ${what}: expected milliseconds as a number or a duration string such as "90s" or "1h30m", got ${describe(input)}.`,
    );
  }

  if (!Number.isFinite(ms)) {
    throw new InvalidArgumentError(`invalid ${what} ${String(input)}: it must be a finite number of milliseconds.`);
  }
  const rounded = Math.round(ms);
  if (rounded <= 0) {
    throw new InvalidArgumentError(
      `invalid ${what} ${JSON.stringify(input)}: it must be positive (at least 1 ms); a lease cannot last zero or negative time.`,
    );
  }
  return rounded;
}

function parseDurationString(text: string, what: string): number {
  const trimmed = text.trim();
  if (trimmed.length === 0) {
    throw new InvalidArgumentError(`invalid ${what} "": expected a duration such as "90s" or "1h30m".`);
  }
  let rest = trimmed;
  let total = 0;
  const negative = rest.startsWith("-");
  if (negative || rest.startsWith("+")) rest = rest.slice(1);
  while (rest.length > 0) {
    const match = DURATION_STRING.exec(rest);
    if (!match) {
      throw new InvalidArgumentError(
        `invalid ${what} "${text}": expected a number followed by a unit (ns, us, ms, s, m, h), such as "90s" or "1h30m".`,
      );
    }
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return negative ? -total : total;
}

/** Formats milliseconds as a compact duration string, such as `1h30m` or `2.5s`. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  let rest = Math.abs(ms);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1000;
  let text = "";
  if (hours > 0) text += `${hours}h`;
  if (minutes > 0) text += `${minutes}m`;
  if (seconds > 0) text += `${Number(seconds.toFixed(3))}s`;
  return sign + text;
}

/** Converts a duration input into a protobuf `Duration`. Throws as {@link parseDurationMs}. */
export function toDurationMessage(input: DurationInput, what = "duration"): Duration {
  return durationFromMs(parseDurationMs(input, what));
}

/** Converts a protobuf `Duration` into milliseconds. */
export function durationMessageToMs(duration: Duration): number {
  return Number(duration.seconds) * 1000 + Math.round(duration.nanos / 1e6);
}

// RFC 3339 with a mandatory time zone, as Kubernetes writes times.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses a time input into a `Date`. `what` names the option in error messages.
 *
 * @throws InvalidArgumentError for an invalid `Date` or a string that is not RFC 3339 with a zone.
 */
export function parseTime(input: TimeInput, what = "time"): Date {
  if (input instanceof Date) {
    if (Number.isNaN(input.getTime())) {
      throw new InvalidArgumentError(`invalid ${what}: the Date is invalid (NaN).`);
    }
    return input;
  }
  if (typeof input === "string" && RFC3339.test(input)) {
    const date = new Date(input);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new InvalidArgumentError(
    `invalid ${what} ${describe(input)}: expected a Date or an RFC 3339 string with a time zone, such as "2026-12-04T10:00:00Z".`,
  );
}

/** Converts a time input into a protobuf `Timestamp`. Throws as {@link parseTime}. */
export function toTimestampMessage(input: TimeInput, what = "time"): Timestamp {
  return timestampFromDate(parseTime(input, what));
}

/** Converts a protobuf `Timestamp` into a `Date`, or `undefined` when it is unset. */
export function timestampToDate(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp === undefined ? undefined : timestampDate(timestamp);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
