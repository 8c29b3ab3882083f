// Child-process side of startMockProcess(): runs one mock controller and carries out the parent's
// commands over IPC until the parent sends "close" or disconnects.
import { startMockController } from "@jumpstarter/sdk/testing";
import { BENCH_NAMESPACE, benchExporters } from "./lab.js";
import type { MockProcessCommand, MockProcessOptions, MockProcessReply } from "./mock-process.js";

const options = JSON.parse(process.argv[2] ?? "{}") as MockProcessOptions;
const send = (reply: MockProcessReply): void => {
  process.send!(reply);
};

const mock = await startMockController({ namespace: BENCH_NAMESPACE, exporters: benchExporters(options.exporterCount) });

process.on("message", async (message: MockProcessCommand) => {
  try {
    if (message.command === "delayAll") mock.delayAll(message.method, message.ms);
    else if (message.command === "clearCalls") mock.clearCalls();
    else await mock.close();
    send({ id: message.id, done: true });
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
