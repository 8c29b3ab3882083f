import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JumpstarterClient, JumpstarterError } from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { makeCertificates } from "./helpers/certificates.js";

let mock: MockController;
let caCert: string;

beforeAll(async () => {
  const certificates = await makeCertificates();
  caCert = certificates.caCert;
  mock = await startMockController({
    namespace: "lab",
    exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }],
    tls: { cert: certificates.serverCert, key: certificates.serverKey },
  });
});

afterAll(async () => {
  await mock?.close();
});

async function getExporterWith(tls: ConstructorParameters<typeof JumpstarterClient>[0]["tls"]): Promise<unknown> {
  const client = new JumpstarterClient({ endpoint: mock.endpoint, namespace: mock.namespace, token: mock.token, tls, timeoutMs: 5000 });
  try {
    return await client.getExporter("rpi4-01");
  } catch (error) {
    return error;
  } finally {
    await client.close();
  }
}

describe("JumpstarterClient over TLS", () => {
  describe("endpoint", () => {
    it("treats host:port as TLS", () => {
      expect(mock.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    });
  });

  describe("tls.ca", () => {
    it("trusts the private CA", async () => {
      const exporter = await getExporterWith({ ca: caCert });
      expect((exporter as { name: string }).name).toBe("namespaces/lab/exporters/rpi4-01");
    });

    it("rejects an unknown CA", async () => {
      const error = await getExporterWith(undefined);
      expect(error).toBeInstanceOf(JumpstarterError);
      expect((error as JumpstarterError).retryable).toBe(false);
      expect((error as Error).message).toContain("could not be verified; pass tls.ca");
    });
  });

  describe("tls.insecure", () => {
    it("skips verification but encrypts", async () => {
      const exporter = await getExporterWith({ insecure: true });
      expect((exporter as { name: string }).name).toBe("namespaces/lab/exporters/rpi4-01");
    });
  });
});
