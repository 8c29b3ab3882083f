// Runs in a fresh project that installed the packed tarball: imports both entry points by their
// public names, checks that internal files stay private, and leases an exporter from the mock
// controller that `@jumpstarter/sdk/testing` ships.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { JumpstarterClient, NotFoundError, isLeaseReady, leaseExporterId, parseSelector } from "@jumpstarter/sdk";
import { startMockController } from "@jumpstarter/sdk/testing";

const require = createRequire(import.meta.url);
const manifest = require("@jumpstarter/sdk/package.json");
assert.equal(manifest.name, "@jumpstarter/sdk");

// Only the entry points in `exports` may be imported.
await assert.rejects(import("@jumpstarter/sdk/dist/src/client.js"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" });

assert.deepEqual(parseSelector("board=rpi4").requirements, [{ key: "board", operator: "=", values: ["rpi4"] }]);

const mock = await startMockController({
  exporters: [
    { name: "rpi4-01", labels: { board: "rpi4" } },
    { name: "qemu-01", labels: { board: "qemu" } },
  ],
});
const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token });
try {
  const names = [];
  for await (const exporter of client.listExporters({ filter: "board=rpi4" })) names.push(exporter.name);
  assert.deepEqual(names, [`namespaces/${mock.namespace}/exporters/rpi4-01`]);

  let lease = await client.createLease({ selector: "board=rpi4", duration: "10m" });
  for (let attempt = 0; !isLeaseReady(lease); attempt++) {
    assert.ok(attempt < 100, `lease ${lease.name} did not become ready within 100 polls`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    lease = await client.getLease(lease.name);
  }
  assert.equal(leaseExporterId(lease), "rpi4-01");
  await client.deleteLease(lease.name);

  // Errors are classes of the installed package, so `instanceof` works for its users.
  await assert.rejects(client.getExporter("missing-01"), NotFoundError);
  console.log(`smoke.mjs: ${manifest.name}@${manifest.version} leased rpi4-01 from the mock controller`);
} finally {
  await client.close();
  await mock.close();
}
