import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ClientConfig,
  ConfigError,
  JumpstarterClient,
  JumpstarterError,
  loadClientConfig,
  resolveConfigHome,
} from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { makeCertificates } from "./helpers/certificates.js";

let mock: MockController;
let caCert: string;
let home: string;
const clients: JumpstarterClient[] = [];

beforeAll(async () => {
  const certificates = await makeCertificates();
  caCert = certificates.caCert;
  mock = await startMockController({
    namespace: "lab",
    clientName: "ci-runner",
    exporters: [{ name: "rpi4-01", labels: { board: "rpi4" } }],
    tls: { cert: certificates.serverCert, key: certificates.serverKey },
  });
});

afterAll(async () => {
  await mock?.close();
});

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "jmp-config-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await rm(home, { recursive: true, force: true });
});

interface ClientFileOptions {
  namespace?: string;
  name?: string;
  endpoint?: string;
  ca?: string;
  insecure?: boolean;
  token?: string;
  acquisitionTimeout?: string;
}

// A client config in the layout that `jmp config client create` writes, extra keys included.
function clientYaml(options: ClientFileOptions = {}): string {
  const ca = options.ca ?? Buffer.from(caCert).toString("base64");
  return [
    "apiVersion: jumpstarter.dev/v1alpha1",
    "kind: ClientConfig",
    "metadata:",
    `  namespace: ${options.namespace ?? "lab"}`,
    `  name: ${options.name ?? "ci-runner"}`,
    `endpoint: ${options.endpoint ?? mock.endpoint}`,
    "tls:",
    `  ca: '${ca}'`,
    `  insecure: ${options.insecure ?? false}`,
    `token: ${options.token ?? mock.token}`,
    "grpcOptions: {}",
    "drivers:",
    "  allow: []",
    "  unsafe: false",
    "leases:",
    `  acquisition_timeout: ${options.acquisitionTimeout ?? "600"}`,
    "shell:",
    "  use_profiles: false",
    "",
  ].join("\n");
}

async function writeClient(alias: string, text: string, configHome = home): Promise<string> {
  await mkdir(join(configHome, "clients"), { recursive: true });
  const file = join(configHome, "clients", `${alias}.yaml`);
  await writeFile(file, text);
  return file;
}

async function writeUserConfig(currentClient: string | null): Promise<string> {
  const file = join(home, "config.yaml");
  const value = currentClient === null ? "null" : currentClient;
  await writeFile(file, `apiVersion: jumpstarter.dev/v1alpha1\nkind: UserConfig\nconfig:\n  current-client: ${value}\n`);
  return file;
}

function envWith(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { JMP_CLIENT_CONFIG_HOME: home, ...extra };
}

async function fromConfig(options: Parameters<typeof JumpstarterClient.fromConfig>[0]): Promise<JumpstarterClient> {
  const client = await JumpstarterClient.fromConfig({ timeoutMs: 5000, ...options });
  clients.push(client);
  return client;
}

describe("resolveConfigHome", () => {
  it("prefers JMP_CLIENT_CONFIG_HOME", () => {
    expect(resolveConfigHome({ JMP_CLIENT_CONFIG_HOME: "/etc/jmp", XDG_CONFIG_HOME: "/xdg" }, "/home/u")).toBe("/etc/jmp");
  });

  it("uses XDG_CONFIG_HOME next", () => {
    expect(resolveConfigHome({ XDG_CONFIG_HOME: "/xdg" }, "/home/u")).toBe("/xdg/jumpstarter");
  });

  it("ignores a relative XDG_CONFIG_HOME", () => {
    expect(resolveConfigHome({ XDG_CONFIG_HOME: "xdg" }, "/home/u")).toBe("/home/u/.config/jumpstarter");
  });

  it("falls back to ~/.config/jumpstarter", () => {
    expect(resolveConfigHome({}, "/home/u")).toBe("/home/u/.config/jumpstarter");
  });
});

describe("loadClientConfig", () => {
  describe("alias", () => {
    it("reads clients/<alias>.yaml", async () => {
      const file = await writeClient("lab", clientYaml());
      const config = await loadClientConfig({ alias: "lab", env: envWith() });

      expect(config).toBeInstanceOf(ClientConfig);
      expect(config.file).toBe(file);
      expect(config.alias).toBe("lab");
      expect(config.namespace).toBe("lab");
      expect(config.name).toBe("ci-runner");
      expect(config.endpoint).toBe(mock.endpoint);
      expect(config.tls).toEqual({ ca: caCert, insecure: false });
      expect(config.leaseTimeoutMs).toBe(600_000);
      expect(config.token).toBe(mock.token);
    });

    it("finds the folder under XDG_CONFIG_HOME", async () => {
      await writeClient("lab", clientYaml(), join(home, "jumpstarter"));
      const config = await loadClientConfig({ alias: "lab", env: { XDG_CONFIG_HOME: home } });
      expect(config.file).toBe(join(home, "jumpstarter", "clients", "lab.yaml"));
    });

    it("finds the folder under the home folder", async () => {
      await writeClient("lab", clientYaml(), join(home, ".config", "jumpstarter"));
      const config = await loadClientConfig({ alias: "lab", env: {}, homeDir: home });
      expect(config.file).toBe(join(home, ".config", "jumpstarter", "clients", "lab.yaml"));
    });

    it("accepts a config without CA and timeout", async () => {
      const text = clientYaml().replace(/^ {2}ca: .*\n/m, "").replace(/^leases:\n.*\n/m, "");
      await writeClient("lab", text);
      const config = await loadClientConfig({ alias: "lab", env: envWith() });
      expect(config.tls).toEqual({ ca: undefined, insecure: false });
      expect(config.leaseTimeoutMs).toBeUndefined();
    });
  });

  describe("current client", () => {
    it("follows config.current-client", async () => {
      await writeClient("other", clientYaml({ name: "other-client" }));
      await writeClient("lab", clientYaml());
      await writeUserConfig("other");
      const config = await loadClientConfig({ env: envWith() });
      expect(config.alias).toBe("other");
      expect(config.name).toBe("other-client");
    });

    it("reads an explicit path", async () => {
      const file = join(home, "elsewhere.yaml");
      await writeFile(file, clientYaml());
      const config = await loadClientConfig({ path: file, env: envWith() });
      expect(config.file).toBe(file);
      expect(config.alias).toBeUndefined();
    });
  });

  describe("environment", () => {
    it("builds an environment-only config", async () => {
      await writeClient("lab", clientYaml({ name: "from-file" }));
      await writeUserConfig("lab");
      const config = await loadClientConfig({
        env: envWith({ JMP_NAMESPACE: "lab", JMP_NAME: "from-env", JMP_ENDPOINT: "controller.example:443", JMP_TOKEN: "env-token" }),
      });
      expect(config.file).toBeUndefined();
      expect(config.name).toBe("from-env");
      expect(config.endpoint).toBe("controller.example:443");
      expect(config.token).toBe("env-token");
      expect(config.tls).toEqual({ ca: undefined, insecure: false });
    });

    it("turns on insecure TLS with JMP_GRPC_INSECURE=1", async () => {
      await writeClient("lab", clientYaml());
      expect((await loadClientConfig({ alias: "lab", env: envWith({ JMP_GRPC_INSECURE: "1" }) })).tls.insecure).toBe(true);
      expect((await loadClientConfig({ alias: "lab", env: envWith({ JMP_GRPC_INSECURE: "0" }) })).tls.insecure).toBe(false);
    });

    it("ignores JMP_NAMESPACE when an alias is given", async () => {
      await writeClient("lab", clientYaml());
      const config = await loadClientConfig({ alias: "lab", env: envWith({ JMP_NAMESPACE: "lab", JMP_NAME: "env" }) });
      expect(config.name).toBe("ci-runner");
    });
  });

  describe("errors", () => {
    const cases: Array<{ name: string; setup: () => Promise<unknown>; options: () => Parameters<typeof loadClientConfig>[0]; file: () => string | undefined; key: string | undefined; message: RegExp }> = [
      {
        name: "missing client file",
        setup: async () => undefined,
        options: () => ({ alias: "nope", env: envWith() }),
        file: () => join(home, "clients", "nope.yaml"),
        key: undefined,
        message: /config file .*nope\.yaml not found; create it with `jmp config client create nope`/,
      },
      {
        name: "missing user config",
        setup: async () => undefined,
        options: () => ({ env: envWith() }),
        file: () => join(home, "config.yaml"),
        key: undefined,
        message: /config\.yaml not found; pass \{ alias \}/,
      },
      {
        name: "no current client",
        setup: () => writeUserConfig(null),
        options: () => ({ env: envWith() }),
        file: () => join(home, "config.yaml"),
        key: "config.current-client",
        message: /missing config\.current-client in .*config\.yaml; select a client with `jmp config client use <alias>`/,
      },
      {
        name: "missing namespace",
        setup: () => writeClient("lab", clientYaml().replace(/^ {2}namespace: .*\n/m, "")),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "metadata.namespace",
        message: /missing metadata\.namespace in .*lab\.yaml/,
      },
      {
        name: "missing token",
        setup: () => writeClient("lab", clientYaml().replace(/^token: .*\n/m, "token: null\n")),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "token",
        message: /missing token in .*lab\.yaml; log in with `jmp login`/,
      },
      {
        name: "bad YAML",
        setup: () => writeClient("lab", clientYaml().replace(/^token: (.*)\n/m, "token: [$1\n")),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: undefined,
        message: /invalid YAML in .*lab\.yaml at line \d+, column \d+ \([A-Z_]+\)/,
      },
      {
        name: "wrong kind",
        setup: () => writeClient("lab", clientYaml().replace("kind: ClientConfig", "kind: ExporterConfig")),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "kind",
        message: /wrong kind "ExporterConfig" in .*lab\.yaml: expected ClientConfig/,
      },
      {
        name: "unreadable CA",
        setup: () => writeClient("lab", clientYaml({ ca: Buffer.from("not a certificate").toString("base64") })),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "tls.ca",
        message: /unreadable CA in tls\.ca of .*lab\.yaml: expected a base64-encoded PEM/,
      },
      {
        name: "CA that is not base64",
        setup: () => writeClient("lab", clientYaml({ ca: "-----BEGIN CERTIFICATE-----" })),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "tls.ca",
        message: /unreadable CA in tls\.ca/,
      },
      {
        name: "invalid namespace",
        setup: () => writeClient("lab", clientYaml({ namespace: "Lab_1" })),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "metadata.namespace",
        message: /invalid metadata\.namespace in .*lab\.yaml: invalid namespace "Lab_1"/,
      },
      {
        name: "non-numeric timeout",
        setup: () => writeClient("lab", clientYaml({ acquisitionTimeout: "soon" })),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "leases.acquisition_timeout",
        message: /invalid leases\.acquisition_timeout in .*lab\.yaml: expected a number, got a string/,
      },
      {
        name: "zero timeout",
        setup: () => writeClient("lab", clientYaml({ acquisitionTimeout: "0" })),
        options: () => ({ alias: "lab", env: envWith() }),
        file: () => join(home, "clients", "lab.yaml"),
        key: "leases.acquisition_timeout",
        message: /expected a number of seconds > 0/,
      },
      {
        name: "missing JMP_ENDPOINT",
        setup: async () => undefined,
        options: () => ({ env: envWith({ JMP_NAMESPACE: "lab", JMP_NAME: "ci", JMP_TOKEN: "t" }) }),
        file: () => undefined,
        key: "JMP_ENDPOINT",
        message: /missing JMP_ENDPOINT in the environment/,
      },
      {
        name: "alias with a path",
        setup: async () => undefined,
        options: () => ({ alias: "../secrets", env: envWith() }),
        file: () => undefined,
        key: "alias",
        message: /invalid client alias "\.\.\/secrets"/,
      },
    ];

    it.each(cases)("names file and key: $name", async ({ setup, options, file, key, message }) => {
      await setup();
      const error = await loadClientConfig(options()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toBeInstanceOf(JumpstarterError);
      expect((error as ConfigError).message).toMatch(message);
      expect((error as ConfigError).file).toBe(file());
      expect((error as ConfigError).key).toBe(key);
      expect((error as ConfigError).message).not.toContain(mock.token);
    });

    it("keeps a misplaced token out of the message", async () => {
      await writeClient("lab", clientYaml().replace(/^endpoint: .*\n/m, `endpoint: [${mock.token}]\n`));
      const error = await loadClientConfig({ alias: "lab", env: envWith() }).catch((e: unknown) => e);
      expect((error as ConfigError).key).toBe("endpoint");
      expect((error as ConfigError).message).toContain("expected a string, got a list");
      expect((error as ConfigError).message).not.toContain(mock.token);
    });
  });

  describe("secrets", () => {
    it("keep the token out of inspect and JSON", async () => {
      await writeClient("lab", clientYaml());
      const config = await loadClientConfig({ alias: "lab", env: envWith() });
      expect(inspect(config, { showHidden: true, depth: 10 })).not.toContain(mock.token);
      expect(inspect(config)).toContain("token: '[redacted]'");
      expect(JSON.stringify(config)).not.toContain(mock.token);
      expect(JSON.parse(JSON.stringify(config)).namespace).toBe("lab");
    });
  });
});

describe("JumpstarterClient.fromConfig", () => {
  it("connects with the alias's CA", async () => {
    await writeClient("lab", clientYaml());
    const client = await fromConfig({ alias: "lab", env: envWith() });

    await client.getExporter("rpi4-01");

    expect(client.namespace).toBe("lab");
    expect(client.clientName).toBe("ci-runner");
    expect(client.leaseTimeoutMs).toBe(600_000);
    const [call] = mock.callsTo("GetExporter").slice(-1);
    expect(call?.headers["jumpstarter-name"]).toBe("ci-runner");
  });

  it("connects as the current client", async () => {
    await writeClient("lab", clientYaml());
    await writeUserConfig("lab");
    const client = await fromConfig({ env: envWith() });
    await expect(client.getExporter("rpi4-01")).resolves.toBeDefined();
  });

  it("connects with tls.insecure", async () => {
    await writeClient("lab", clientYaml({ ca: "", insecure: true }));
    const client = await fromConfig({ alias: "lab", env: envWith() });
    await expect(client.getExporter("rpi4-01")).resolves.toBeDefined();
  });

  it("rejects an untrusted certificate without insecure", async () => {
    await writeClient("lab", clientYaml({ ca: "" }));
    const client = await fromConfig({ alias: "lab", env: envWith() });
    await expect(client.getExporter("rpi4-01")).rejects.toThrow(/TLS certificate could not be verified/);
  });

  it("connects with JMP_GRPC_INSECURE=1", async () => {
    await writeClient("lab", clientYaml({ ca: "" }));
    const client = await fromConfig({ alias: "lab", env: envWith({ JMP_GRPC_INSECURE: "1" }) });
    await expect(client.getExporter("rpi4-01")).resolves.toBeDefined();
  });

  it("connects from the environment alone", async () => {
    const client = await fromConfig({
      env: { JMP_NAMESPACE: "lab", JMP_NAME: "ci-runner", JMP_ENDPOINT: mock.endpoint, JMP_TOKEN: mock.token, JMP_GRPC_INSECURE: "1" },
      homeDir: home,
    });
    await expect(client.getExporter("rpi4-01")).resolves.toBeDefined();
    expect(client.leaseTimeoutMs).toBe(7_200_000);
  });

  it("lets options override the config", async () => {
    await writeClient("lab", clientYaml());
    const client = await fromConfig({ alias: "lab", env: envWith(), leaseTimeoutMs: 1000 });
    expect(client.leaseTimeoutMs).toBe(1000);
  });

  it("rejects both alias and path", async () => {
    await expect(fromConfig({ alias: "lab", path: "/tmp/x.yaml", env: envWith() })).rejects.toThrow(/either alias or path/);
  });
});
