import { generate } from "selfsigned";

/** Makes a private CA and a server certificate for 127.0.0.1 that it signed, fresh for each run. */
export async function makeCertificates(): Promise<{ caCert: string; serverCert: string; serverKey: string }> {
  const ca = await generate([{ name: "commonName", value: "Jumpstarter Test CA" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await generate([{ name: "commonName", value: "127.0.0.1" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] },
    ],
  });
  return { caCert: ca.cert, serverCert: server.cert, serverKey: server.private };
}
