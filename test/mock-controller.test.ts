import * as http2 from "node:http2";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, FieldMaskSchema, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { generate } from "selfsigned";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ExporterStatus, LeaseSchema, type Lease } from "../src/generated.js";
import {
  SAMPLE_LAB_OTHER_CLIENT,
  SAMPLE_LAB_OTHER_LEASE,
  sampleLab,
  startMockController,
  startSampleLab,
  type MockController,
  type MockControllerOptions,
} from "../src/testing/index.js";
import { authHeaders, connectRaw, type RawClient } from "./helpers/raw-client.js";

const NAMESPACE = "lab";
const CLIENT = "ci";
const EXPORTERS = [
  { name: "rpi4-01", labels: { board: "rpi4", arch: "arm64", "jumpstarter.dev/rack": "a3" } },
  { name: "rpi4-02", labels: { board: "rpi4", arch: "arm64" } },
  { name: "jetson-01", labels: { board: "jetson-orin", arch: "arm64" } },
  { name: "nuc-01", labels: { board: "nuc", arch: "amd64" }, online: false },
];
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.parse("2030-01-01T00:00:00Z");

let mock: MockController;
let raw: RawClient;
let clockMs: number;
const openClients: RawClient[] = [];

async function start(options: MockControllerOptions = {}): Promise<void> {
  mock = await startMockController({ namespace: NAMESPACE, clientName: CLIENT, exporters: EXPORTERS, ...options });
  raw = connect(mock.token);
}

function connect(token: string, namespace: string = NAMESPACE): RawClient {
  const client = connectRaw(mock.endpoint, { headers: authHeaders(token, namespace) });
  openClients.push(client);
  return client;
}

function fakeClock(): () => Date {
  clockMs = T0;
  return () => new Date(clockMs);
}

afterEach(async () => {
  for (const client of openClients.splice(0)) client.close();
  await mock?.close();
});

/** Returns the ConnectError that `call` rejects with, and fails the test when it resolves. */
async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

function condition(lease: Lease | undefined, type: string) {
  return lease?.conditions.find((candidate) => candidate.type === type);
}

function leaseName(id: string): string {
  return `namespaces/${NAMESPACE}/leases/${id}`;
}

function exporterName(id: string): string {
  return `namespaces/${NAMESPACE}/exporters/${id}`;
}

async function createLease(
  fields: MessageInitShape<typeof LeaseSchema>,
  leaseId = "",
  client: RawClient = raw,
): Promise<Lease> {
  return client.client.createLease({
    parent: `namespaces/${NAMESPACE}`,
    leaseId,
    lease: create(LeaseSchema, { duration: durationFromMs(HOUR), ...fields }),
  });
}

async function getLease(name: string, client: RawClient = raw): Promise<Lease> {
  return client.client.getLease({ name });
}

async function waitForCondition(
  name: string,
  type: string,
  status: string,
  reason?: string,
): Promise<Lease> {
  return vi.waitFor(
    async () => {
      const lease = await getLease(name);
      const found = condition(lease, type);
      expect(found?.status).toBe(status);
      if (reason !== undefined) expect(found?.reason).toBe(reason);
      return lease;
    },
    { timeout: 2000, interval: 5 },
  );
}

describe("startMockController", () => {
  describe("authentication", () => {
    beforeEach(() => start());

    it("rejects a missing authorization header", async () => {
      const anonymous = connectRaw(mock.endpoint, { headers: { "jumpstarter-namespace": NAMESPACE } });
      openClients.push(anonymous);
      const error = await rejection(anonymous.client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("missing authorization header");
      expect(mock.callsTo("GetExporter")).toHaveLength(1);
    });

    it("rejects a header without Bearer", async () => {
      const basic = connectRaw(mock.endpoint, { headers: { authorization: `Basic ${mock.token}` } });
      openClients.push(basic);
      const error = await rejection(basic.client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe("malformed authorization header");
    });

    it("rejects a token that is not a JWT", async () => {
      const error = await rejection(connect("not-a-jwt").client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unauthenticated);
    });

    it("rejects a token signed with another key", async () => {
      const foreign = await startMockController({ namespace: NAMESPACE, clientName: CLIENT });
      const foreignToken = foreign.token;
      await foreign.close();
      const error = await rejection(connect(foreignToken).client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unauthenticated);
    });

    it("rejects an expired token as UNKNOWN", async () => {
      const expired = await mock.issueToken({ lifetimeMs: 1000, issuedAt: new Date(Date.now() - MINUTE) });
      const error = await rejection(connect(expired).client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toContain("token is expired");
    });

    it("rejects a namespace header mismatch", async () => {
      const error = await rejection(
        connect(mock.token, "other").client.getExporter({ name: exporterName("rpi4-01") }),
      );
      expect(error.code).toBe(Code.PermissionDenied);
      expect(error.rawMessage).toBe("namespace mismatch");
    });

    it("rejects a resource in another namespace", async () => {
      const error = await rejection(raw.client.getExporter({ name: "namespaces/other/exporters/rpi4-01" }));
      expect(error.code).toBe(Code.PermissionDenied);
      expect(error.rawMessage).toBe("namespace mismatch");
    });

    it("accepts a call without the namespace header", async () => {
      const bare = connectRaw(mock.endpoint, { headers: { authorization: `Bearer ${mock.token}` } });
      openClients.push(bare);
      const exporter = await bare.client.getExporter({ name: exporterName("rpi4-02") });
      expect(exporter.name).toBe(exporterName("rpi4-02"));
    });

    it("issues distinct tokens within one second", async () => {
      const issuedAt = new Date(T0);
      const first = await mock.issueToken({ issuedAt });
      const second = await mock.issueToken({ issuedAt });
      expect(first).not.toBe(second);
    });
  });

  describe("token clock", () => {
    it("expires tokens by the injected clock", async () => {
      await start({ now: fakeClock(), tokenLifetimeMs: HOUR });
      await raw.client.getExporter({ name: exporterName("rpi4-01") });

      clockMs += HOUR + 1000;
      const error = await rejection(raw.client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toContain("token is expired");
    });
  });

  describe("resource names", () => {
    beforeEach(() => start());

    it.each([
      ["namespaces/lab/leases", 'invalid number of segments in identifier "namespaces/lab/leases", expecting 4, got 3'],
      ["nope/lab/leases/x", 'invalid first segment in identifier "nope/lab/leases/x", expecting "namespaces", got "nope"'],
      ["namespaces/lab/pods/x", 'invalid third segment in identifier "namespaces/lab/pods/x", expecting "leases", got "pods"'],
    ])("rejects %s", async (name, message) => {
      const error = await rejection(getLease(name));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe(message);
    });

    it("rejects a malformed parent", async () => {
      const error = await rejection(raw.client.listExporters({ parent: "namespaces/lab/exporters" }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain("expecting 2, got 3");
    });
  });

  describe("GetExporter", () => {
    beforeEach(() => start());

    it("hides jumpstarter.dev labels", async () => {
      const exporter = await raw.client.getExporter({ name: exporterName("rpi4-01") });
      expect(exporter.labels).toEqual({ board: "rpi4", arch: "arm64" });
    });

    it("shows hidden labels on request", async () => {
      const exporter = await raw.client.getExporter({ name: exporterName("rpi4-01"), showHiddenLabels: true });
      expect(exporter.labels["jumpstarter.dev/rack"]).toBe("a3");
    });

    it("reports status fields", async () => {
      const online = await raw.client.getExporter({ name: exporterName("rpi4-01") });
      expect(online.online).toBe(true);
      expect(online.status).toBe(ExporterStatus.AVAILABLE);
      expect(online.enabled).toBe(true);

      const offline = await raw.client.getExporter({ name: exporterName("nuc-01") });
      expect(offline.online).toBe(false);
      expect(offline.status).toBe(ExporterStatus.OFFLINE);
    });

    it("reports a missing exporter as UNKNOWN", async () => {
      const error = await rejection(raw.client.getExporter({ name: exporterName("ghost") }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe('exporters.jumpstarter.dev "ghost" not found');
    });
  });

  describe("ListExporters", () => {
    beforeEach(() => start());
    const parent = `namespaces/${NAMESPACE}`;

    it("returns all exporters by name for page size 0", async () => {
      const response = await raw.client.listExporters({ parent, pageSize: 0 });
      expect(response.exporters.map((exporter) => exporter.name)).toEqual(
        ["jetson-01", "nuc-01", "rpi4-01", "rpi4-02"].map(exporterName),
      );
      expect(response.nextPageToken).toBe("");
    });

    it("pages with continue tokens", async () => {
      const first = await raw.client.listExporters({ parent, pageSize: 3 });
      expect(first.exporters.map((exporter) => exporter.name)).toEqual(
        ["jetson-01", "nuc-01", "rpi4-01"].map(exporterName),
      );
      expect(first.nextPageToken).not.toBe("");

      const second = await raw.client.listExporters({ parent, pageSize: 3, pageToken: first.nextPageToken });
      expect(second.exporters.map((exporter) => exporter.name)).toEqual([exporterName("rpi4-02")]);
      expect(second.nextPageToken).toBe("");
    });

    it("resumes after a removed exporter", async () => {
      const first = await raw.client.listExporters({ parent, pageSize: 2 });
      expect(first.exporters.map((exporter) => exporter.name)).toEqual(["jetson-01", "nuc-01"].map(exporterName));
      mock.removeExporter("nuc-01");
      mock.addExporter({ name: "aaa-01" });
      mock.addExporter({ name: "pi-zero-01" });

      const second = await raw.client.listExporters({ parent, pageSize: 2, pageToken: first.nextPageToken });
      expect(second.exporters.map((exporter) => exporter.name)).toEqual(["pi-zero-01", "rpi4-01"].map(exporterName));
      const third = await raw.client.listExporters({ parent, pageSize: 2, pageToken: second.nextPageToken });
      expect(third.exporters.map((exporter) => exporter.name)).toEqual([exporterName("rpi4-02")]);
      expect(third.nextPageToken).toBe("");
    });

    it("lists exporters added since the last listing", async () => {
      await raw.client.listExporters({ parent, pageSize: 0 });
      mock.addExporter({ name: "zynq-01" });
      mock.removeExporter("jetson-01");

      const response = await raw.client.listExporters({ parent, pageSize: 0 });
      expect(response.exporters.map((exporter) => exporter.name)).toEqual(
        ["nuc-01", "rpi4-01", "rpi4-02", "zynq-01"].map(exporterName),
      );
    });

    it("filters by label selector", async () => {
      const rpi = await raw.client.listExporters({ parent, filter: "board=rpi4" });
      expect(rpi.exporters.map((exporter) => exporter.name)).toEqual(["rpi4-01", "rpi4-02"].map(exporterName));

      const set = await raw.client.listExporters({ parent, filter: "board in (nuc,jetson-orin),arch!=amd64" });
      expect(set.exporters.map((exporter) => exporter.name)).toEqual([exporterName("jetson-01")]);
    });

    it("filters on hidden labels", async () => {
      const response = await raw.client.listExporters({ parent, filter: "jumpstarter.dev/rack=a3" });
      expect(response.exporters.map((exporter) => exporter.name)).toEqual([exporterName("rpi4-01")]);
      expect(response.exporters[0]?.labels["jumpstarter.dev/rack"]).toBeUndefined();
    });

    it("rejects a malformed filter", async () => {
      const error = await rejection(raw.client.listExporters({ parent, filter: "board in (rpi4" }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain("invalid filter");
    });

    it("rejects an undecodable page token", async () => {
      const error = await rejection(raw.client.listExporters({ parent, pageSize: 1, pageToken: "%%%" }));
      expect(error.code).toBe(Code.InvalidArgument);
    });

    it("rejects expired page tokens", async () => {
      const first = await raw.client.listExporters({ parent, pageSize: 1 });
      mock.expirePageTokens();
      const error = await rejection(raw.client.listExporters({ parent, pageSize: 1, pageToken: first.nextPageToken }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe(
        "The provided continue parameter is too old to display a consistent list result. You can start a new " +
          "list without the continue parameter, or use the continue value from the 410 Gone response.",
      );

      const restarted = await raw.client.listExporters({ parent, pageSize: 1 });
      expect(restarted.exporters).toHaveLength(1);
    });
  });

  describe("CreateLease", () => {
    it("stays Pending during the ready delay", async () => {
      await start({ readyDelayMs: HOUR });
      const created = await createLease({ selector: "board=jetson-orin" });
      expect(created.conditions).toEqual([]);
      expect(created.client).toBe(`namespaces/${NAMESPACE}/clients/${CLIENT}`);

      const acquiring = await getLease(created.name);
      expect(condition(acquiring, "Ready")).toBeUndefined();
      expect(condition(acquiring, "Pending")?.status).toBe("True");
      expect(acquiring.exporter).toBeUndefined();
    });

    it("becomes Ready after the ready delay", async () => {
      await start({ readyDelayMs: 30 });
      const started = performance.now();
      const created = await createLease({ selector: "board=jetson-orin" });

      const ready = await waitForCondition(created.name, "Ready", "True", "Ready");
      expect(performance.now() - started).toBeGreaterThanOrEqual(25);
      expect(ready.exporter).toBe(exporterName("jetson-01"));
      expect(ready.effectiveBeginTime).toBeDefined();
      expect(ready.effectiveDuration).toBeDefined();
      expect(condition(ready, "Pending")?.status).toBe("True");
      expect(ready.conditions.filter((entry) => entry.type === "Pending")).toHaveLength(1);
    });

    it("chooses exporters by name", async () => {
      await start();
      const first = await createLease({ selector: "board=rpi4" });
      const second = await createLease({ selector: "board=rpi4" });
      expect((await waitForCondition(first.name, "Ready", "True")).exporter).toBe(exporterName("rpi4-01"));
      expect((await waitForCondition(second.name, "Ready", "True")).exporter).toBe(exporterName("rpi4-02"));
    });

    it("uses the given lease id", async () => {
      await start();
      const lease = await createLease({ selector: "board=rpi4" }, "my-lease");
      expect(lease.name).toBe(leaseName("my-lease"));
    });

    it("generates a UUIDv7 id", async () => {
      await start();
      const lease = await createLease({ selector: "board=rpi4" });
      expect(lease.name.split("/")[3]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it("rejects a duplicate lease id", async () => {
      await start();
      await createLease({ selector: "board=rpi4" }, "twice");
      const error = await rejection(createLease({ selector: "board=rpi4" }, "twice"));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe('leases.jumpstarter.dev "twice" already exists');
    });

    it("rejects an invalid lease id", async () => {
      await start();
      const error = await rejection(createLease({ selector: "board=rpi4" }, "Not_Valid"));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain('"Not_Valid"');
    });

    it("requires a selector or exporter name", async () => {
      await start();
      const error = await rejection(createLease({}));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe("one of selector or exporter_name is required");
    });

    it("rejects a malformed selector", async () => {
      await start();
      const error = await rejection(createLease({ selector: "board in rpi4" }));
      expect(error.code).toBe(Code.InvalidArgument);
    });

    it("rejects a parent in another namespace", async () => {
      await start();
      const error = await rejection(
        raw.client.createLease({ parent: "namespaces/other", lease: create(LeaseSchema, { selector: "board=rpi4" }) }),
      );
      expect(error.code).toBe(Code.PermissionDenied);
    });

    it("waits while matching exporters are offline", async () => {
      await start();
      const created = await createLease({ selector: "board=nuc" });
      const pending = await waitForCondition(created.name, "Pending", "True", "Offline");
      expect(condition(pending, "Ready")).toBeUndefined();

      mock.setExporterOnline("nuc-01", true);
      const ready = await waitForCondition(created.name, "Ready", "True");
      expect(ready.exporter).toBe(exporterName("nuc-01"));
    });

    it("waits while matching exporters are leased", async () => {
      await start();
      const other = mock.createLeaseAs("other", { exporterName: "jetson-01", durationMs: HOUR });
      const created = await createLease({ selector: "board=jetson-orin" });
      const pending = await waitForCondition(created.name, "Pending", "True", "NotAvailable");
      expect(pending.exporter).toBeUndefined();

      mock.endLease(other.name);
      const ready = await waitForCondition(created.name, "Ready", "True");
      expect(ready.exporter).toBe(exporterName("jetson-01"));
      expect(condition(ready, "Pending")?.reason).toBe("NotAvailable");
      expect(ready.conditions.map((entry) => entry.type)).toEqual(["Pending", "Ready"]);
    });

    it("serves a waiting lease when another expires", async () => {
      await start();
      const short = await createLease({ exporterName: "jetson-01", duration: durationFromMs(40) });
      const waiting = await createLease({ exporterName: "jetson-01" });

      const expired = await waitForCondition(short.name, "Ready", "False", "Expired");
      expect(expired.effectiveEndTime).toBeDefined();
      expect(expired.exporter).toBe(exporterName("jetson-01"));
      const ready = await waitForCondition(waiting.name, "Ready", "True");
      expect(ready.exporter).toBe(exporterName("jetson-01"));
    });

    it("reports no matching exporter as NoAccess", async () => {
      await start();
      const created = await createLease({ selector: "board=nothing" });
      const lease = await waitForCondition(created.name, "Unsatisfiable", "True", "NoAccess");
      expect(condition(lease, "Unsatisfiable")?.message).toContain("no exporter matches the selector");
    });

    it("reports an unknown exporter name", async () => {
      await start();
      const created = await createLease({ exporterName: "ghost" });
      await waitForCondition(created.name, "Unsatisfiable", "True", "ExporterNotFound");
    });

    it("waits for a future begin time", async () => {
      await start({ now: fakeClock() });
      const beginTime = timestampFromDate(new Date(T0 + MINUTE));
      const created = await createLease({ selector: "board=rpi4", beginTime });
      const waiting = await getLease(created.name);
      expect(condition(waiting, "Ready")).toBeUndefined();
      expect(condition(waiting, "Pending")?.status).toBe("True");

      clockMs += MINUTE;
      const ready = await waitForCondition(created.name, "Ready", "True");
      expect(timestampDate(ready.effectiveBeginTime!).getTime()).toBe(T0 + MINUTE);
    });

    it("sets observed generation and transition time", async () => {
      await start({ now: fakeClock() });
      const created = await createLease({ selector: "board=rpi4" });
      const ready = await waitForCondition(created.name, "Ready", "True");
      const readyCondition = condition(ready, "Ready");
      expect(readyCondition?.observedGeneration).toBe(1n);
      expect(readyCondition?.lastTransitionTime?.seconds).toBe(BigInt(T0 / 1000));
    });
  });

  describe("lease time rules", () => {
    beforeEach(() => start({ now: fakeClock() }));
    const at = (ms: number) => timestampFromDate(new Date(T0 + ms));

    it.each([
      { case: "duration alone", fields: { duration: durationFromMs(HOUR) }, durationMs: HOUR, beginMs: undefined },
      { case: "begin and duration", fields: { beginTime: at(HOUR), duration: durationFromMs(HOUR) }, durationMs: HOUR, beginMs: HOUR },
      { case: "begin and end", fields: { beginTime: at(HOUR), endTime: at(3 * HOUR) }, durationMs: 2 * HOUR, beginMs: HOUR },
      { case: "end and duration", fields: { endTime: at(3 * HOUR), duration: durationFromMs(HOUR) }, durationMs: HOUR, beginMs: 2 * HOUR },
      {
        case: "all three agreeing",
        fields: { beginTime: at(HOUR), endTime: at(2 * HOUR), duration: durationFromMs(HOUR) },
        durationMs: HOUR,
        beginMs: HOUR,
      },
    ])("accepts $case", async ({ fields, durationMs, beginMs }) => {
      const lease = await raw.client.createLease({
        parent: `namespaces/${NAMESPACE}`,
        lease: create(LeaseSchema, { selector: "board=rpi4", ...fields }),
      });
      expect(Number(lease.duration?.seconds) * 1000).toBe(durationMs);
      const begin = lease.beginTime === undefined ? undefined : timestampDate(lease.beginTime).getTime() - T0;
      expect(begin).toBe(beginMs);
    });

    it.each([
      {
        case: "all three conflicting",
        fields: { beginTime: at(HOUR), endTime: at(2 * HOUR), duration: durationFromMs(2 * HOUR) },
        message: "duration conflicts with begin_time and end_time",
      },
      {
        case: "end alone",
        fields: { endTime: at(HOUR) },
        message: "duration is required (must specify Duration, or both BeginTime and EndTime)",
      },
      { case: "no time at all", fields: {}, message: "duration is required (must specify Duration, or both BeginTime and EndTime)" },
      { case: "zero duration", fields: { duration: durationFromMs(0) }, message: "duration must be positive, got 0s" },
      { case: "negative duration", fields: { duration: durationFromMs(-1000) }, message: "duration must be positive, got -1s" },
      {
        case: "end before begin",
        fields: { beginTime: at(2 * HOUR), endTime: at(HOUR) },
        message: "duration must be positive, got -1h0m0s",
      },
    ])("rejects $case as UNKNOWN", async ({ fields, message }) => {
      const error = await rejection(
        raw.client.createLease({
          parent: `namespaces/${NAMESPACE}`,
          lease: create(LeaseSchema, { selector: "board=rpi4", ...fields }),
        }),
      );
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe(message);
    });
  });

  describe("UpdateLease", () => {
    const mask = (...paths: string[]) => create(FieldMaskSchema, { paths });

    it("rejects an empty update mask", async () => {
      await start();
      const created = await createLease({ selector: "board=rpi4" });
      const error = await rejection(
        raw.client.updateLease({ lease: create(LeaseSchema, { name: created.name, duration: durationFromMs(HOUR) }) }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
    });

    it("rejects an unsupported mask path", async () => {
      await start();
      const created = await createLease({ selector: "board=rpi4" });
      const error = await rejection(
        raw.client.updateLease({ lease: create(LeaseSchema, { name: created.name }), updateMask: mask("selector") }),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toContain('"selector"');
    });

    it("extends a Ready lease", async () => {
      await start({ now: fakeClock() });
      const created = await createLease({ selector: "board=rpi4", duration: durationFromMs(MINUTE) });
      await waitForCondition(created.name, "Ready", "True");

      const updated = await raw.client.updateLease({
        lease: create(LeaseSchema, { name: created.name, duration: durationFromMs(10 * MINUTE) }),
        updateMask: mask("duration"),
      });
      expect(Number(updated.duration?.seconds)).toBe(600);

      clockMs += 2 * MINUTE;
      expect(condition(await getLease(created.name), "Ready")?.status).toBe("True");

      clockMs += 10 * MINUTE;
      const expired = await getLease(created.name);
      expect(condition(expired, "Ready")?.reason).toBe("Expired");
      expect(timestampDate(expired.effectiveEndTime!).getTime()).toBe(T0 + 10 * MINUTE);
    });

    it("keeps the begin time of a started lease", async () => {
      await start({ now: fakeClock() });
      const created = await createLease({ selector: "board=rpi4" });
      await waitForCondition(created.name, "Ready", "True");
      const error = await rejection(
        raw.client.updateLease({
          lease: create(LeaseSchema, { name: created.name, beginTime: timestampFromDate(new Date(T0 + HOUR)) }),
          updateMask: mask("begin_time"),
        }),
      );
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe("cannot update begin_time: lease has already started");
    });

    it("applies the time rules", async () => {
      await start();
      const created = await createLease({ selector: "board=rpi4" });
      const error = await rejection(
        raw.client.updateLease({
          lease: create(LeaseSchema, { name: created.name, duration: durationFromMs(-MINUTE) }),
          updateMask: mask("duration"),
        }),
      );
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe("duration must be positive, got -1m0s");
    });

    it("transfers a lease to another client", async () => {
      await start();
      const created = await createLease({ selector: "board=rpi4" });
      await waitForCondition(created.name, "Ready", "True");
      const updated = await raw.client.updateLease({
        lease: create(LeaseSchema, { name: created.name, client: `namespaces/${NAMESPACE}/clients/heir` }),
        updateMask: mask("client"),
      });
      expect(updated.client).toBe(`namespaces/${NAMESPACE}/clients/heir`);

      const mine = await raw.client.listLeases({ parent: `namespaces/${NAMESPACE}` });
      expect(mine.leases).toEqual([]);
      const heir = connect(await mock.issueToken({ clientName: "heir" }));
      const theirs = await heir.client.listLeases({ parent: `namespaces/${NAMESPACE}` });
      expect(theirs.leases.map((lease) => lease.name)).toEqual([created.name]);
    });

    it("rejects another client's lease", async () => {
      await start();
      const other = mock.createLeaseAs("other", { selector: "board=rpi4", durationMs: HOUR });
      const error = await rejection(
        raw.client.updateLease({
          lease: create(LeaseSchema, { name: other.name, duration: durationFromMs(2 * HOUR) }),
          updateMask: mask("duration"),
        }),
      );
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toContain("permission denied");
    });
  });

  describe("DeleteLease", () => {
    beforeEach(() => start());

    it("releases the lease and frees its exporter", async () => {
      const created = await createLease({ exporterName: "jetson-01" });
      await waitForCondition(created.name, "Ready", "True");
      const waiting = await createLease({ exporterName: "jetson-01" });

      await raw.client.deleteLease({ name: created.name });
      const released = await getLease(created.name);
      expect(condition(released, "Ready")?.status).toBe("False");
      expect(condition(released, "Ready")?.reason).toBe("Released");
      expect(released.effectiveEndTime).toBeDefined();
      await waitForCondition(waiting.name, "Ready", "True");
    });

    it("fails the second time", async () => {
      const created = await createLease({ selector: "board=rpi4" });
      await raw.client.deleteLease({ name: created.name });
      const error = await rejection(raw.client.deleteLease({ name: created.name }));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toBe(`lease "${created.name}" has already been released`);
    });

    it("reports a missing lease as UNKNOWN", async () => {
      const error = await rejection(raw.client.deleteLease({ name: leaseName("ghost") }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe('leases.jumpstarter.dev "ghost" not found');
    });

    it("rejects another client's lease", async () => {
      const other = mock.createLeaseAs("other", { selector: "board=rpi4", durationMs: HOUR });
      const error = await rejection(raw.client.deleteLease({ name: other.name }));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toContain("permission denied");
    });
  });

  describe("GetLease", () => {
    beforeEach(() => start());

    it("reports a missing lease as UNKNOWN", async () => {
      const error = await rejection(getLease(leaseName("ghost")));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe('leases.jumpstarter.dev "ghost" not found');
    });

    it("rejects another client's lease", async () => {
      const other = mock.createLeaseAs("other", { selector: "board=rpi4", durationMs: HOUR });
      const error = await rejection(getLease(other.name));
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toContain("permission denied");
    });
  });

  describe("ListLeases", () => {
    beforeEach(() => start());
    const parent = `namespaces/${NAMESPACE}`;

    it("lists only the caller's leases", async () => {
      mock.createLeaseAs("other", { selector: "board=rpi4", durationMs: HOUR });
      const mine = await createLease({ selector: "board=rpi4" });
      const response = await raw.client.listLeases({ parent });
      expect(response.leases.map((lease) => lease.name)).toEqual([mine.name]);
    });

    it("hides ended leases unless only_active is false", async () => {
      const running = await createLease({ selector: "board=rpi4" });
      const ended = await createLease({ selector: "board=rpi4" });
      await raw.client.deleteLease({ name: ended.name });

      const active = await raw.client.listLeases({ parent });
      expect(active.leases.map((lease) => lease.name)).toEqual([running.name]);
      const explicit = await raw.client.listLeases({ parent, onlyActive: true });
      expect(explicit.leases.map((lease) => lease.name)).toEqual([running.name]);
      const all = await raw.client.listLeases({ parent, onlyActive: false });
      expect(all.leases.map((lease) => lease.name)).toEqual([running.name, ended.name]);
    });

    it("filters by tags", async () => {
      await createLease({ selector: "board=rpi4", tags: { team: "a" } });
      const b = await createLease({ selector: "board=rpi4", tags: { team: "b" } });
      const byTag = await raw.client.listLeases({ parent, tagFilter: "team=b" });
      expect(byTag.leases.map((lease) => lease.name)).toEqual([b.name]);
      const byFilter = await raw.client.listLeases({ parent, filter: "team!=a" });
      expect(byFilter.leases.map((lease) => lease.name)).toEqual([b.name]);
    });

    it("pages with continue tokens", async () => {
      const first = await createLease({ selector: "board=rpi4" }, "lease-a");
      const second = await createLease({ selector: "board=rpi4" }, "lease-b");
      const page1 = await raw.client.listLeases({ parent, pageSize: 1 });
      expect(page1.leases.map((lease) => lease.name)).toEqual([first.name]);
      const page2 = await raw.client.listLeases({ parent, pageSize: 1, pageToken: page1.nextPageToken });
      expect(page2.leases.map((lease) => lease.name)).toEqual([second.name]);
      expect(page2.nextPageToken).toBe("");
    });
  });

  describe("RotateToken", () => {
    it("returns a new token with its expiry", async () => {
      await start({ now: fakeClock(), tokenLifetimeMs: HOUR });
      const response = await raw.client.rotateToken({ parent: `namespaces/${NAMESPACE}` });
      expect(response.token).not.toBe(mock.token);
      expect(timestampDate(response.expiry!).getTime()).toBe(T0 + HOUR);

      const rotated = connect(response.token);
      await rotated.client.getExporter({ name: exporterName("rpi4-01") });
      await raw.client.getExporter({ name: exporterName("rpi4-01") });
    });

    it("accepts the namespace as parent", async () => {
      await start();
      const response = await raw.client.rotateToken({ parent: `namespaces/${NAMESPACE}` });
      expect(response.token).not.toBe("");
    });

    it("rejects a client name as parent", async () => {
      await start();
      const error = await rejection(raw.client.rotateToken({ parent: `namespaces/${NAMESPACE}/clients/${CLIENT}` }));
      expect(error.code).toBe(Code.InvalidArgument);
    });

    it("rejects another namespace", async () => {
      await start();
      const error = await rejection(raw.client.rotateToken({ parent: "namespaces/other" }));
      expect(error.code).toBe(Code.PermissionDenied);
    });

    it("uses the current token lifetime", async () => {
      await start({ now: fakeClock() });
      mock.setTokenLifetime(5 * MINUTE);
      const response = await raw.client.rotateToken({ parent: `namespaces/${NAMESPACE}` });
      expect(timestampDate(response.expiry!).getTime()).toBe(T0 + 5 * MINUTE);
    });
  });

  describe("faults", () => {
    beforeEach(() => start());

    it("fails the next calls with failNext", async () => {
      mock.failNext("GetExporter", 2, { code: Code.Unavailable, message: "controller restarting" });
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await rejection(raw.client.getExporter({ name: exporterName("rpi4-01") }));
        expect(error.code).toBe(Code.Unavailable);
        expect(error.rawMessage).toBe("controller restarting");
      }
      await raw.client.getExporter({ name: exporterName("rpi4-01") });
      expect(mock.callsTo("GetExporter")).toHaveLength(3);
    });

    it("fails before authentication", async () => {
      mock.failNext("GetExporter", 1, { code: Code.ResourceExhausted, message: "slow down" });
      const error = await rejection(connect("not-a-jwt").client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.ResourceExhausted);
    });

    it("stalls a call past the client deadline", async () => {
      mock.stallNext("GetExporter", 1);
      const error = await rejection(raw.client.getExporter({ name: exporterName("rpi4-01") }, { timeoutMs: 50 }));
      expect(error.code).toBe(Code.DeadlineExceeded);

      const exporter = await raw.client.getExporter({ name: exporterName("rpi4-01") }, { timeoutMs: 2000 });
      expect(exporter.name).toBe(exporterName("rpi4-01"));
    });

    it("stalls a call for a fixed time", async () => {
      mock.stallNext("ListExporters", 1, { ms: 40 });
      const started = performance.now();
      await raw.client.listExporters({ parent: `namespaces/${NAMESPACE}` });
      expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    });

    it("adds latency with delayAll", async () => {
      mock.delayAll("GetExporter", 30);
      const started = performance.now();
      await raw.client.getExporter({ name: exporterName("rpi4-01") });
      expect(performance.now() - started).toBeGreaterThanOrEqual(25);

      mock.delayAll("GetExporter", 0);
      mock.clearFaults();
    });

    it("loses the response after the call takes effect", async () => {
      mock.loseResponseNext("CreateLease", 1, { code: Code.Unavailable, message: "connection reset" });
      const error = await rejection(createLease({ selector: "board=rpi4" }, "lost-response"));
      expect(error.code).toBe(Code.Unavailable);

      const lease = await getLease(leaseName("lost-response"));
      expect(lease.name).toBe(leaseName("lost-response"));
      expect(mock.leases()).toHaveLength(1);
    });

    it("logs calls with request and headers", async () => {
      mock.failNext("GetExporter", 1, { code: Code.Internal, message: "boom" });
      await rejection(raw.client.getExporter({ name: exporterName("rpi4-01") }));
      const [call] = mock.callsTo("GetExporter");
      expect(call?.request).toMatchObject({ name: exporterName("rpi4-01") });
      expect(call?.headers["authorization"]).toBe(`Bearer ${mock.token}`);
      expect(call?.headers["jumpstarter-namespace"]).toBe(NAMESPACE);
      expect(call?.at).toBeInstanceOf(Date);

      mock.clearCalls();
      expect(mock.calls).toHaveLength(0);
    });
  });

  describe("lifecycle", () => {
    it("restarts on the same port with the same state", async () => {
      await start();
      const created = await createLease({ selector: "board=rpi4" }, "survivor");
      const port = mock.port;

      await mock.restart();
      expect(mock.port).toBe(port);

      const fresh = connect(mock.token);
      const lease = await getLease(created.name, fresh);
      expect(lease.name).toBe(leaseName("survivor"));
    });

    it("refuses connections during restart downtime", async () => {
      await start();
      // restart() stops listening before it returns to the caller, so the call below is refused.
      const restarting = mock.restart({ downtimeMs: 300 });
      const error = await rejection(connect(mock.token).client.getExporter({ name: exporterName("rpi4-01") }));
      expect(error.code).toBe(Code.Unavailable);
      await restarting;
      await connect(mock.token).client.getExporter({ name: exporterName("rpi4-01") });
    });

    it("sends GOAWAY and accepts new connections", async () => {
      await start();
      const session = http2.connect(mock.endpoint);
      const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
      session.on("error", () => {});
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));

      mock.goAway();
      await goaway;
      session.destroy();

      const exporter = await connect(mock.token).client.getExporter({ name: exporterName("rpi4-01") });
      expect(exporter.name).toBe(exporterName("rpi4-01"));
    });

    it("serves TLS with a host:port endpoint", async () => {
      const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], {
        keyType: "ec",
        algorithm: "sha256",
        extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
      });
      mock = await startMockController({ namespace: NAMESPACE, exporters: EXPORTERS, tls: { cert: pems.cert, key: pems.private } });
      expect(mock.endpoint).toBe(`127.0.0.1:${mock.port}`);

      const secure = connectRaw(mock.endpoint, { headers: authHeaders(mock.token, NAMESPACE), ca: pems.cert });
      openClients.push(secure);
      const exporter = await secure.client.getExporter({ name: exporterName("rpi4-01") });
      expect(exporter.name).toBe(exporterName("rpi4-01"));
    });

    it("ends a stalled call on close", async () => {
      await start();
      mock.stallNext("GetExporter", 1);
      const stalled = rejection(raw.client.getExporter({ name: exporterName("rpi4-01") }));
      await vi.waitFor(() => expect(mock.callsTo("GetExporter")).toHaveLength(1), { interval: 5 });

      await mock.close();
      await mock.close();
      const error = await stalled;
      expect([Code.Unavailable, Code.Canceled, Code.Internal]).toContain(error.code);
    });

    it("leaves no active handles after close", async () => {
      const tracked = ["TCPServerWrap", "TCPSocketWrap", "Timeout"];
      const countHandles = () => {
        const counts = new Map<string, number>();
        for (const name of process.getActiveResourcesInfo()) {
          if (tracked.includes(name)) counts.set(name, (counts.get(name) ?? 0) + 1);
        }
        return counts;
      };
      const before = countHandles();
      // The mock unrefs its timers, which hides them from getActiveResourcesInfo. Recording every
      // timer and ref-ing it after close shows any that close() left running.
      const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
      let timers: NodeJS.Timeout[] = [];

      try {
        await start({ readyDelayMs: 20 });
        const ready = await createLease({ selector: "board=rpi4" });
        await waitForCondition(ready.name, "Ready", "True");
        await createLease({ selector: "board=rpi4", beginTime: timestampFromDate(new Date(Date.now() + HOUR)) });
        await createLease({ selector: "board=jetson-orin" });
        mock.stallNext("ListExporters", 1, { ms: HOUR });
        const stalled = rejection(raw.client.listExporters({ parent: `namespaces/${NAMESPACE}` }));
        await vi.waitFor(() => expect(mock.callsTo("ListExporters")).toHaveLength(1), { interval: 5 });

        await mock.close();
        await stalled;
        raw.close();

        timers = setTimeoutSpy.mock.results.map((result) => result.value as NodeJS.Timeout);
        setTimeoutSpy.mockRestore();
        for (const timer of timers) timer.ref();

        await vi.waitFor(
          () => {
            const after = countHandles();
            for (const name of tracked) expect(after.get(name) ?? 0, name).toBeLessThanOrEqual(before.get(name) ?? 0);
          },
          { timeout: 2000, interval: 10 },
        );
      } finally {
        setTimeoutSpy.mockRestore();
        for (const timer of timers) timer.unref();
      }
    });
  });

  describe("controls", () => {
    beforeEach(() => start());

    it("adds and removes exporters", async () => {
      mock.addExporter({ name: "imx8-01", labels: { board: "imx8" } });
      const created = await createLease({ selector: "board=imx8" });
      await waitForCondition(created.name, "Ready", "True");

      mock.removeExporter("imx8-01");
      expect(mock.exporters().map((exporter) => exporter.name)).not.toContain("imx8-01");
      const error = await rejection(getLease(created.name));
      expect(error.rawMessage).toContain("not found");
    });

    it("reports lease snapshots", async () => {
      const created = await createLease({ selector: "board=rpi4" });
      await waitForCondition(created.name, "Ready", "True");
      mock.endLease(created.name);

      expect(mock.activeLeases()).toEqual([]);
      const [ended] = mock.leases();
      expect(condition(ended, "Ready")?.reason).toBe("Expired");
    });

    it("sets a lease condition", async () => {
      const created = await createLease({ selector: "board=rpi4" });
      mock.setLeaseCondition(created.name, { type: "Invalid", status: "True", reason: "InvalidSpec", message: "bad" });

      const lease = await getLease(created.name);
      expect(condition(lease, "Invalid")).toMatchObject({ status: "True", reason: "InvalidSpec", message: "bad" });
      expect(() => mock.setLeaseCondition("missing", { type: "Ready", status: "True", reason: "Ready" })).toThrow(/not found/);
    });

    it("marks a leased exporter LEASE_READY", async () => {
      const created = await createLease({ exporterName: "jetson-01" });
      await waitForCondition(created.name, "Ready", "True");
      expect(mock.exporters().find((exporter) => exporter.name === "jetson-01")?.status).toBe(ExporterStatus.LEASE_READY);

      await raw.client.deleteLease({ name: created.name });
      expect(mock.exporters().find((exporter) => exporter.name === "jetson-01")?.status).toBe(ExporterStatus.AVAILABLE);
    });
  });
});

describe("startSampleLab", () => {
  it("starts with six exporters, one offline", async () => {
    mock = await startSampleLab();
    const exporters = mock.exporters();
    expect(exporters).toHaveLength(sampleLab().length);
    expect(exporters.filter((exporter) => !exporter.online).map((exporter) => exporter.name)).toEqual(["rpi4-03"]);
  });

  it("holds a Ready lease for another client", async () => {
    mock = await startSampleLab({ clientName: CLIENT });
    const [busy] = mock.activeLeases();
    expect(busy?.name).toBe(`namespaces/default/leases/${SAMPLE_LAB_OTHER_LEASE}`);
    expect(busy?.client).toBe(`namespaces/default/clients/${SAMPLE_LAB_OTHER_CLIENT}`);
    expect(condition(busy, "Ready")?.status).toBe("True");

    raw = connectRaw(mock.endpoint, { headers: authHeaders(mock.token, mock.namespace) });
    openClients.push(raw);
    const mine = await raw.client.listLeases({ parent: "namespaces/default" });
    expect(mine.leases).toEqual([]);

    const created = await raw.client.createLease({
      parent: "namespaces/default",
      lease: create(LeaseSchema, { selector: "board=jetson-orin", duration: durationFromMs(HOUR) }),
    });
    const ready = await vi.waitFor(
      async () => {
        const lease = await raw.client.getLease({ name: created.name });
        expect(condition(lease, "Ready")?.status).toBe("True");
        return lease;
      },
      { timeout: 2000, interval: 5 },
    );
    expect(ready.exporter).toBe("namespaces/default/exporters/jetson-orin-02");
  });
});
