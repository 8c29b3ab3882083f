import { describe, expect, it } from "vitest";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { buildCreateLeaseRequest, buildUpdateLeaseRequest } from "../src/lease-spec.js";
import { InvalidArgumentError } from "../src/index.js";

describe("lease-spec", () => {
  describe("buildCreateLeaseRequest", () => {
    it("builds a selector lease", () => {
      const request = buildCreateLeaseRequest({ selector: { board: "rpi4" }, duration: "30m", tags: { team: "kernel" } }, "lab");
      expect(request.parent).toBe("namespaces/lab");
      expect(request.leaseId).toBe("");
      expect(request.lease?.selector).toBe("board=rpi4");
      expect(request.lease?.duration).toEqual(durationFromMs(1_800_000));
      expect(request.lease?.tags).toEqual({ team: "kernel" });
    });

    it("expands the exporter name", () => {
      const request = buildCreateLeaseRequest({ exporterName: "rpi4-01", duration: 1000 }, "lab");
      expect(request.lease?.exporterName).toBe("rpi4-01");
    });

    it("accepts begin and end without duration", () => {
      const request = buildCreateLeaseRequest(
        { selector: "board=rpi4", beginTime: "2026-12-04T10:00:00Z", endTime: "2026-12-04T11:00:00Z" },
        "lab",
      );
      expect(request.lease?.duration).toBeUndefined();
      expect(request.lease?.beginTime).toBeDefined();
      expect(request.lease?.endTime).toBeDefined();
    });

    it("keeps the lease id", () => {
      expect(buildCreateLeaseRequest({ selector: "a=b", duration: 1, leaseId: "my-lease" }, "lab").leaseId).toBe("my-lease");
    });

    const tooMany = (count: number, keyLength = 3, valueLength = 1): Record<string, string> =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`.padEnd(keyLength, "x"), "v".repeat(valueLength)]));

    it.each([
      ["no selector or exporter", { duration: 1000 }, /needs a selector or an exporterName/],
      ["blank selector", { selector: "  ", duration: 1000 }, /needs a selector or an exporterName/],
      ["bad selector syntax", { selector: "board rpi4", duration: 1000 }, /position 6/],
      ["no duration", { selector: "a=b" }, /needs a duration/],
      ["end alone", { selector: "a=b", endTime: "2026-12-04T11:00:00Z" }, /only an endTime needs a duration/],
      ["zero duration", { selector: "a=b", duration: 0 }, /must be positive/],
      ["negative duration", { selector: "a=b", duration: "-5m" }, /must be positive/],
      ["end before begin", { selector: "a=b", beginTime: "2026-12-04T11:00:00Z", endTime: "2026-12-04T10:00:00Z" }, /not after its beginTime/],
      [
        "three disagreeing times",
        { selector: "a=b", duration: "2h", beginTime: "2026-12-04T10:00:00Z", endTime: "2026-12-04T11:00:00Z" },
        /does not equal endTime minus beginTime/,
      ],
      ["eleven tags", { selector: "a=b", duration: 1, tags: tooMany(11) }, /at most 10 tags, got 11/],
      ["tag key with prefix", { selector: "a=b", duration: 1, tags: { "x.io/team": "a" } }, /cannot contain "\/"/],
      ["bad tag key", { selector: "a=b", duration: 1, tags: { "-team": "a" } }, /invalid tag key "-team"/],
      ["bad tag value", { selector: "a=b", duration: 1, tags: { team: "a b" } }, /invalid value for tag "team"/],
      ["nine context entries", { selector: "a=b", duration: 1, context: tooMany(9) }, /at most 8 context entries, got 9/],
      ["long context key", { selector: "a=b", duration: 1, context: tooMany(1, 33) }, /1 to 32 characters, got 33/],
      ["long context value", { selector: "a=b", duration: 1, context: tooMany(1, 3, 65) }, /at most 64 characters/],
      ["exporter of another namespace", { exporterName: "namespaces/x/exporters/a", duration: 1 }, /namespace "x"/],
      ["bad lease id", { selector: "a=b", duration: 1, leaseId: "Bad_Id" }, /invalid lease id "Bad_Id"/],
    ])("rejects %s", (_case, spec, message) => {
      expect(() => buildCreateLeaseRequest(spec as never, "lab")).toThrow(InvalidArgumentError);
      expect(() => buildCreateLeaseRequest(spec as never, "lab")).toThrow(message);
    });

    it("does not change the caller's spec", () => {
      const spec = Object.freeze({ selector: Object.freeze({ board: "rpi4" }), duration: "1h", tags: Object.freeze({ a: "b" }) });
      expect(() => buildCreateLeaseRequest(spec, "lab")).not.toThrow();
    });
  });

  describe("buildUpdateLeaseRequest", () => {
    it("lists only the given fields in the mask", () => {
      const request = buildUpdateLeaseRequest("abc", { duration: "2h", client: "other" }, "lab");
      expect(request.updateMask?.paths).toEqual(["duration", "client"]);
      expect(request.lease?.name).toBe("namespaces/lab/leases/abc");
      expect(request.lease?.client).toBe("namespaces/lab/clients/other");
    });

    it("maps times to snake_case paths", () => {
      const request = buildUpdateLeaseRequest("abc", { beginTime: new Date(0), endTime: new Date(1000) }, "lab");
      expect(request.updateMask?.paths).toEqual(["begin_time", "end_time"]);
    });

    it("rejects an empty change set", () => {
      expect(() => buildUpdateLeaseRequest("abc", {}, "lab")).toThrow(/nothing to update on lease "namespaces\/lab\/leases\/abc"/);
    });
  });
});
