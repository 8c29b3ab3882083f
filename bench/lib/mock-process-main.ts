// Child-process side of startMockProcess(): runs one mock controller and carries out the parent's
// commands over IPC until the parent sends "close" or disconnects.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { startMockController, type MockController } from "@jumpstarter/sdk/testing";
import { BENCH_NAMESPACE, benchExporters } from "./lab.js";
import type { MockProcessCall, MockProcessCommand, MockProcessOptions, MockProcessReply } from "./mock-process.js";

const options = JSON.parse(process.argv[2] ?? "{}") as MockProcessOptions;
const send = (reply: MockProcessReply): void => {
  process.send!(reply);
};

const mock = await startMockController({ namespace: BENCH_NAMESPACE, exporters: benchExporters(options.exporterCount) });

process.on("message", async (message: MockProcessCommand) => {
  try {
    const value = await carryOut(message);
    send(value === undefined ? { id: message.id, done: true } : { id: message.id, done: true, value });
    if (message.command === "close") process.disconnect();
  } catch (error) {
    send({ id: message.id, error: String(error) });
  }
});
// Without a parent no more commands can arrive, so an orphaned mock closes itself.
process.on("disconnect", () => {
  void mock.close();
});

send({ ready: { endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token } });

// Returns the value that the command's reply carries, or undefined for a command without one.
async function carryOut(message: MockProcessCommand): Promise<unknown> {
  switch (message.command) {
    case "delayAll":
      mock.delayAll(message.method, message.ms);
      return undefined;
    case "clearCalls":
      mock.clearCalls();
      return undefined;
    case "callsTo":
      return mock.callsTo(message.method).map(toProcessCall);
    case "setReadyDelay":
      mock.setReadyDelay(message.ms);
      return undefined;
    case "leaseReadyTimes":
      return leaseReadyTimes(mock);
    case "issueToken":
      return mock.issueToken({ lifetimeMs: message.lifetimeMs, issuedAt: new Date(message.issuedAtMs) });
    case "close":
      await mock.close();
      return undefined;
  }
}

function toProcessCall(call: MockController["calls"][number]): MockProcessCall {
  const name = (call.request as { name?: unknown }).name;
  return {
    atMs: call.at.getTime(),
    name: typeof name === "string" ? name : "",
    token: (call.headers["authorization"] ?? "").replace(/^Bearer /, ""),
  };
}

// The mock sets effective_begin_time from its clock, to the millisecond, when it makes a lease Ready.
// The Ready condition's lastTransitionTime is the same instant, but Kubernetes keeps that field in
// whole seconds, too coarse for delays of a few hundred milliseconds.
function leaseReadyTimes(controller: MockController): Record<string, number | null> {
  const times: Record<string, number | null> = {};
  for (const lease of controller.leases()) {
    times[lease.name] = lease.effectiveBeginTime === undefined ? null : timestampMs(lease.effectiveBeginTime);
  }
  return times;
}
