import { Code, ConnectError } from "@connectrpc/connect";

/** Time fields of a lease as the client set them. Every field is optional. */
export interface LeaseTimeInput {
  beginTime?: Date | undefined;
  endTime?: Date | undefined;
  /** Requested duration in ms. */
  durationMs?: number | undefined;
}

/** Time fields of a lease after the controller's rules filled in the derived values. */
export interface LeaseTimes {
  /** Requested begin, given or derived as `endTime - duration`. Undefined means "as soon as possible". */
  beginTime?: Date | undefined;
  /** Requested end, only when the client gave one. The controller never derives it. */
  endTime?: Date | undefined;
  /** Duration in ms, given or derived as `endTime - beginTime`. It is always positive. */
  durationMs: number;
}

/**
 * Applies the controller's lease time rules and returns the completed fields.
 *
 * - begin + end gives `duration = end - begin`, and a duration that is also given must agree.
 * - end + duration gives `begin = end - duration`.
 * - duration alone, or begin + duration, is kept as given.
 * - The final duration must be present and positive.
 *
 * @throws ConnectError UNKNOWN with the controller's text, because the controller returns these
 *   errors without a gRPC status: `duration conflicts with begin_time and end_time`,
 *   `duration is required (...)` or `duration must be positive, got -1s`.
 */
export function resolveLeaseTimes(input: LeaseTimeInput): LeaseTimes {
  let { beginTime, durationMs } = input;
  const { endTime } = input;

  if (beginTime !== undefined && endTime !== undefined) {
    const calculatedMs = endTime.getTime() - beginTime.getTime();
    if (durationMs !== undefined && durationMs > 0 && durationMs !== calculatedMs) {
      throw new ConnectError("duration conflicts with begin_time and end_time", Code.Unknown);
    }
    durationMs = calculatedMs;
  } else if (endTime !== undefined && durationMs !== undefined && durationMs > 0) {
    beginTime = new Date(endTime.getTime() - durationMs);
  }

  if (durationMs === undefined) {
    throw new ConnectError(
      "duration is required (must specify Duration, or both BeginTime and EndTime)",
      Code.Unknown,
    );
  }
  if (durationMs <= 0) {
    throw new ConnectError(
      `duration must be positive, got ${formatGoDuration(durationMs)}`,
      Code.Unknown,
    );
  }
  return { beginTime, endTime, durationMs };
}

/**
 * Formats a duration in ms the way Go's `time.Duration.String` does, for example `0s`, `-1s`,
 * `1.5s`, `500ms` or `1h0m0s`, so that messages match the controller's.
 */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  const absolute = Math.abs(ms);
  if (absolute < 1000) return `${sign}${trimNumber(absolute)}ms`;

  const hours = Math.floor(absolute / 3_600_000);
  const minutes = Math.floor((absolute % 3_600_000) / 60_000);
  const seconds = trimNumber((absolute % 60_000) / 1000);
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

// Up to nanosecond precision, without trailing zeros.
function trimNumber(value: number): string {
  return String(Number(value.toFixed(9)));
}
