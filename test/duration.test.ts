import { describe, expect, it } from "vitest";
import { InvalidArgumentError, formatDurationMs, parseDurationMs, parseTime } from "../src/index.js";

describe("duration", () => {
  describe("parseDurationMs", () => {
    it.each([
      [1500, 1500],
      ["90s", 90_000],
      ["1h30m", 5_400_000],
      ["1.5h", 5_400_000],
      ["500ms", 500],
      ["2m0.5s", 120_500],
      ["1500000us", 1500],
      ["1000000000ns", 1000],
    ])("parses %j", (input, expected) => {
      expect(parseDurationMs(input)).toBe(expected);
    });

    it.each([0, -1, "0s", "-5m", "", "5", "5 minutes", "1d", Number.NaN, Number.POSITIVE_INFINITY])("rejects %j", (input) => {
      expect(() => parseDurationMs(input)).toThrow(InvalidArgumentError);
    });

    it("names the option in the message", () => {
      expect(() => parseDurationMs("soon", "extend by")).toThrow(/invalid extend by "soon"/);
    });
  });

  describe("formatDurationMs", () => {
    it.each([
      [5_400_000, "1h30m"],
      [2_500, "2.5s"],
      [0, "0s"],
    ])("formats %i", (ms, expected) => {
      expect(formatDurationMs(ms)).toBe(expected);
    });
  });

  describe("parseTime", () => {
    it("accepts RFC 3339 with a zone", () => {
      expect(parseTime("2026-12-04T10:00:00+01:00").toISOString()).toBe("2026-12-04T09:00:00.000Z");
    });

    it.each(["2026-12-04", "2026-12-04T10:00:00", "tomorrow"])("rejects %j", (input) => {
      expect(() => parseTime(input)).toThrow(/RFC 3339/);
    });

    it("rejects an invalid Date", () => {
      expect(() => parseTime(new Date(Number.NaN))).toThrow(/invalid/);
    });
  });
});
