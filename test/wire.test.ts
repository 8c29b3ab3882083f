// Wire-compatibility checks: each field of each message is encoded and compared with bytes built by
// hand from the deployed controller's field table (field number, wire type, presence). A wrong
// number, type or missing `optional` in proto/ changes these bytes.
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  ClientService,
  ConditionSchema,
  CreateLeaseRequestSchema,
  DeleteLeaseRequestSchema,
  ExporterSchema,
  ExporterStatus,
  GetExporterRequestSchema,
  GetLeaseRequestSchema,
  LeaseSchema,
  ListExportersRequestSchema,
  ListExportersResponseSchema,
  ListLeasesRequestSchema,
  ListLeasesResponseSchema,
  RotateTokenRequestSchema,
  RotateTokenResponseSchema,
  TimeSchema,
  UpdateLeaseRequestSchema,
} from "../src/generated.js";

const VARINT = 0;
const LEN = 2;

function varint(value: number | bigint): number[] {
  let rest = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  do {
    let byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0n);
  return bytes;
}

function tag(field: number, wireType: number): number[] {
  return varint((field << 3) | wireType);
}

function num(field: number, value: number | bigint | boolean): number[] {
  return [...tag(field, VARINT), ...varint(typeof value === "boolean" ? Number(value) : value)];
}

function bytes(field: number, payload: number[]): number[] {
  return [...tag(field, LEN), ...varint(payload.length), ...payload];
}

function str(field: number, text: string): number[] {
  return bytes(field, [...Buffer.from(text, "utf8")]);
}

/** Encodes one map<string,string> entry, whose key is field 1 and value field 2 of the entry message. */
function mapEntry(field: number, key: string, value: string): number[] {
  return bytes(field, [...str(1, key), ...str(2, value)]);
}

/** google.protobuf.Duration and Timestamp: seconds = 1, nanos = 2. */
function secondsNanos(field: number, seconds: number, nanos = 0): number[] {
  return bytes(field, [...num(1, seconds), ...(nanos ? num(2, nanos) : [])]);
}

type Case<Desc extends DescMessage> = [string, MessageInitShape<Desc>, number[]];

function check<Desc extends DescMessage>(schema: Desc, cases: Case<Desc>[]): void {
  describe(schema.typeName, () => {
    it.each(cases)("encodes %s", (_field, init, expected) => {
      expect([...toBinary(schema, create(schema, init))]).toEqual(expected);
    });
  });
}

describe("wire format", () => {
  check(ExporterSchema, [
    ["name", { name: "e" }, str(1, "e")],
    ["labels", { labels: { k: "v" } }, mapEntry(2, "k", "v")],
    ["online", { online: true }, num(3, true)],
    ["status", { status: ExporterStatus.LEASE_READY }, num(4, 4)],
    ["status_message", { statusMessage: "m" }, str(5, "m")],
    ["enabled (explicit false)", { enabled: false }, num(6, false)],
    ["deprecated_labels", { deprecatedLabels: { k: "v" } }, mapEntry(7, "k", "v")],
  ]);

  check(LeaseSchema, [
    ["name", { name: "l" }, str(1, "l")],
    ["selector", { selector: "a=b" }, str(2, "a=b")],
    ["duration (explicit zero)", { duration: { seconds: 0n } }, bytes(3, [])],
    ["effective_duration", { effectiveDuration: { seconds: 60n } }, secondsNanos(4, 60)],
    ["begin_time", { beginTime: { seconds: 5n, nanos: 7 } }, secondsNanos(5, 5, 7)],
    ["effective_begin_time", { effectiveBeginTime: { seconds: 6n } }, secondsNanos(6, 6)],
    ["end_time", { endTime: { seconds: 7n } }, secondsNanos(7, 7)],
    ["effective_end_time", { effectiveEndTime: { seconds: 8n } }, secondsNanos(8, 8)],
    ["client (explicit empty)", { client: "" }, str(9, "")],
    ["exporter", { exporter: "x" }, str(10, "x")],
    ["conditions", { conditions: [{ type: "Ready" }] }, bytes(11, str(1, "Ready"))],
    ["exporter_name (explicit empty)", { exporterName: "" }, str(12, "")],
    ["tags", { tags: { t: "1" } }, mapEntry(13, "t", "1")],
    ["allow_disabled", { allowDisabled: true }, num(14, true)],
    ["context", { context: { c: "2" } }, mapEntry(15, "c", "2")],
    ["deprecated_labels", { deprecatedLabels: { d: "3" } }, mapEntry(16, "d", "3")],
  ]);

  check(TimeSchema, [
    ["seconds (explicit zero)", { seconds: 0n }, num(1, 0)],
    ["nanos (explicit zero)", { nanos: 0 }, num(2, 0)],
  ]);

  check(ConditionSchema, [
    ["type", { type: "" }, str(1, "")],
    ["status", { status: "True" }, str(2, "True")],
    ["observedGeneration (int64)", { observedGeneration: -1n }, num(3, -1n)],
    ["lastTransitionTime", { lastTransitionTime: { seconds: 3n } }, bytes(4, num(1, 3))],
    ["reason", { reason: "Ready" }, str(5, "Ready")],
    ["message", { message: "m" }, str(6, "m")],
  ]);

  check(GetExporterRequestSchema, [
    ["name", { name: "n" }, str(1, "n")],
    ["show_hidden_labels", { showHiddenLabels: true }, num(2, true)],
  ]);

  check(ListExportersRequestSchema, [
    ["parent", { parent: "p" }, str(1, "p")],
    ["page_size (int32)", { pageSize: -2 }, num(2, -2n)],
    ["page_token", { pageToken: "t" }, str(3, "t")],
    ["filter", { filter: "f" }, str(4, "f")],
    ["show_hidden_labels", { showHiddenLabels: true }, num(5, true)],
  ]);

  check(ListExportersResponseSchema, [
    ["exporters", { exporters: [{ name: "e" }] }, bytes(1, str(1, "e"))],
    ["next_page_token", { nextPageToken: "t" }, str(2, "t")],
  ]);

  check(GetLeaseRequestSchema, [["name", { name: "n" }, str(1, "n")]]);

  check(ListLeasesRequestSchema, [
    ["parent", { parent: "p" }, str(1, "p")],
    ["page_size", { pageSize: 3 }, num(2, 3)],
    ["page_token", { pageToken: "t" }, str(3, "t")],
    ["filter", { filter: "f" }, str(4, "f")],
    ["only_active (explicit false)", { onlyActive: false }, num(5, false)],
    ["tag_filter", { tagFilter: "g" }, str(6, "g")],
  ]);

  check(ListLeasesResponseSchema, [
    ["leases", { leases: [{ name: "l" }] }, bytes(1, str(1, "l"))],
    ["next_page_token", { nextPageToken: "t" }, str(2, "t")],
  ]);

  check(CreateLeaseRequestSchema, [
    ["parent", { parent: "p" }, str(1, "p")],
    ["lease_id", { leaseId: "i" }, str(2, "i")],
    ["lease", { lease: { name: "l" } }, bytes(3, str(1, "l"))],
  ]);

  check(UpdateLeaseRequestSchema, [
    ["lease", { lease: { name: "l" } }, bytes(1, str(1, "l"))],
    ["update_mask", { updateMask: { paths: ["duration"] } }, bytes(2, str(1, "duration"))],
  ]);

  check(DeleteLeaseRequestSchema, [["name", { name: "n" }, str(1, "n")]]);
  check(RotateTokenRequestSchema, [["parent", { parent: "p" }, str(1, "p")]]);

  check(RotateTokenResponseSchema, [
    ["token", { token: "t" }, str(1, "t")],
    ["expiry", { expiry: { seconds: 9n } }, secondsNanos(2, 9)],
  ]);

  describe("ClientService", () => {
    it("has the deployed name and methods", () => {
      expect(ClientService.typeName).toBe("jumpstarter.client.v1.ClientService");
      expect(ClientService.methods.map((m) => [m.name, m.input.typeName, m.output.typeName])).toEqual([
        ["GetExporter", "jumpstarter.client.v1.GetExporterRequest", "jumpstarter.client.v1.Exporter"],
        ["ListExporters", "jumpstarter.client.v1.ListExportersRequest", "jumpstarter.client.v1.ListExportersResponse"],
        ["GetLease", "jumpstarter.client.v1.GetLeaseRequest", "jumpstarter.client.v1.Lease"],
        ["ListLeases", "jumpstarter.client.v1.ListLeasesRequest", "jumpstarter.client.v1.ListLeasesResponse"],
        ["CreateLease", "jumpstarter.client.v1.CreateLeaseRequest", "jumpstarter.client.v1.Lease"],
        ["UpdateLease", "jumpstarter.client.v1.UpdateLeaseRequest", "jumpstarter.client.v1.Lease"],
        ["DeleteLease", "jumpstarter.client.v1.DeleteLeaseRequest", "google.protobuf.Empty"],
        ["RotateToken", "jumpstarter.client.v1.RotateTokenRequest", "jumpstarter.client.v1.RotateTokenResponse"],
      ]);
    });

    it("uses the deployed enum values", () => {
      expect([
        ExporterStatus.UNSPECIFIED,
        ExporterStatus.OFFLINE,
        ExporterStatus.AVAILABLE,
        ExporterStatus.BEFORE_LEASE_HOOK,
        ExporterStatus.LEASE_READY,
        ExporterStatus.AFTER_LEASE_HOOK,
        ExporterStatus.BEFORE_LEASE_HOOK_FAILED,
        ExporterStatus.AFTER_LEASE_HOOK_FAILED,
      ]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });
  });
});
