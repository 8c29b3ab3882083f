import { describe, expect, it } from "vitest";
import { InvalidArgumentError, parseResourceName, shortId, toResourceName } from "../src/index.js";

describe("names", () => {
  describe("toResourceName", () => {
    it("expands a short id", () => {
      expect(toResourceName("rpi4-01", "exporters", "lab")).toBe("namespaces/lab/exporters/rpi4-01");
    });

    it("keeps a full name of the same namespace and kind", () => {
      expect(toResourceName("namespaces/lab/leases/abc", "leases", "lab")).toBe("namespaces/lab/leases/abc");
    });

    it("rejects another namespace", () => {
      expect(() => toResourceName("namespaces/prod/leases/abc", "leases", "lab")).toThrow(
        /lease "namespaces\/prod\/leases\/abc" is in namespace "prod", but this client works in namespace "lab"/,
      );
    });

    it("rejects another kind", () => {
      expect(() => toResourceName("namespaces/lab/exporters/abc", "leases", "lab")).toThrow(/names exporter "abc", not a lease/);
    });

    it.each(["", "RPI4", "rpi4_01", "-rpi4", "a/b", "namespaces/lab/leases/", "namespaces/lab/things/x"])("rejects %j", (input) => {
      expect(() => toResourceName(input, "leases", "lab")).toThrow(InvalidArgumentError);
    });
  });

  describe("parseResourceName", () => {
    it("splits the parts", () => {
      expect(parseResourceName("namespaces/lab/clients/ci")).toEqual({ namespace: "lab", kind: "clients", id: "ci" });
    });
  });

  describe("shortId", () => {
    it("takes the last segment", () => {
      expect(shortId("namespaces/lab/exporters/rpi4-01")).toBe("rpi4-01");
    });

    it("keeps a bare id", () => {
      expect(shortId("rpi4-01")).toBe("rpi4-01");
    });
  });
});
