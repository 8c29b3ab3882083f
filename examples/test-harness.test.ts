// Test-harness example: a vitest fixture that gives each test a leased exporter and releases it
// when the test ends, whether it passed or failed.
//
// With JMP_ENDPOINT, JMP_NAMESPACE and JMP_TOKEN set (and optionally JMP_NAME), the tests lease
// exporters of that controller. Raise the test timeout there, because a lease may wait for a board.
// Otherwise they run against the embedded mock controller with its sample lab, as `npm test` does.
import { JumpstarterClient, isLeaseEnded, parseSelector, selectorMatches, type LeaseHandle } from "@jumpstarter/sdk";
import { startSampleLab } from "@jumpstarter/sdk/testing";
import { test as base, describe, expect } from "vitest";

const SELECTOR = process.env.HARNESS_SELECTOR ?? "board=rpi4";

interface Lab {
  client: JumpstarterClient;
  /** Names of this client's leases that are still active; only known for the mock controller. */
  activeLeases?: () => string[];
  close(): Promise<void>;
}

const test = base.extend<{ $file: { lab: Lab }; $test: { lease: LeaseHandle } }>({
  // One client per test file. After the last test it checks that no lease was left behind.
  lab: [
    async ({}, use) => {
      const lab = await openLab();
      await use(lab);
      const leftBehind = lab.activeLeases?.() ?? [];
      await lab.close();
      if (leftBehind.length > 0) {
        throw new Error(`leases left behind after the tests: ${leftBehind.join(", ")}. Release each lease a test acquires, for example with withLease.`);
      }
    },
    { scope: "file" },
  ],

  // A fresh lease for every test that requests one. withLease releases it once `use` returns,
  // which vitest does after the test body and its afterEach hooks have run.
  lease: async ({ lab }, use) => {
    await lab.client.withLease({ selector: SELECTOR, duration: "15m", tags: { harness: "vitest-example" } }, use);
  },
});

async function openLab(): Promise<Lab> {
  const { JMP_ENDPOINT, JMP_NAMESPACE, JMP_TOKEN, JMP_NAME } = process.env;
  if (JMP_ENDPOINT && JMP_NAMESPACE && JMP_TOKEN) {
    const client = new JumpstarterClient({ endpoint: JMP_ENDPOINT, namespace: JMP_NAMESPACE, token: JMP_TOKEN, clientName: JMP_NAME });
    return { client, close: () => client.close() };
  }

  const mock = await startSampleLab();
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token, clientName: mock.clientName });
  const ownLease = `namespaces/${mock.namespace}/clients/${mock.clientName}`;
  return {
    client,
    activeLeases: () => mock.activeLeases().filter((lease) => lease.client === ownLease).map((lease) => lease.name),
    close: async () => {
      await client.close();
      await mock.close();
    },
  };
}

describe("test harness", () => {
  let previousLease: string | undefined;

  test("leases a matching exporter", ({ lease }) => {
    expect(lease.held).toBe(true);
    expect(selectorMatches(parseSelector(SELECTOR), lease.exporterLabels)).toBe(true);
    previousLease = lease.name;
  });

  test("releases each test's lease", async ({ lab, lease }) => {
    expect(previousLease).toBeDefined();
    expect(lease.name).not.toBe(previousLease);
    const previous = await lab.client.listLeases({ includeEnded: true }).toArray();
    const ended = previous.find((candidate) => candidate.name === previousLease);
    expect(ended).toBeDefined();
    expect(isLeaseEnded(ended!)).toBe(true);
  });

  test("extends a long test's lease", async ({ lease }) => {
    const before = lease.endsAt!.getTime();
    await lease.extend("10m");
    expect(lease.endsAt!.getTime() - before).toBe(10 * 60_000);
  });

  test("runs without a lease", ({ lab }) => {
    expect(lab.client.namespace).toBeTruthy();
  });
});
