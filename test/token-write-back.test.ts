import * as fs from "node:fs/promises";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError, JumpstarterClient, type RotatedToken } from "../src/index.js";
import { startMockController, type MockController } from "../src/testing/index.js";
import { withFileLock } from "../src/config/file-lock.js";
import { writeTokenToFile, type WriteBackFileSystem } from "../src/config/token-write-back.js";
import { RecordingLogger, deferred } from "./helpers/recording-logger.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let mock: MockController;
let home: string;
const clients: JumpstarterClient[] = [];

beforeEach(async () => {
  mock = await startMockController({ namespace: "lab", clientName: "ci-runner", tokenLifetimeMs: HOUR, exporters: [{ name: "rpi4-01", labels: {} }] });
  home = await mkdtemp(join(tmpdir(), "jmp-write-back-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await mock.close();
  await rm(home, { recursive: true, force: true });
  vi.useRealTimers();
});

// A client file as `jmp` writes it, with comments and keys that the SDK does not read.
function clientYaml(token: string): string {
  return `# Written by jmp; edit with care.
apiVersion: jumpstarter.dev/v1alpha1
kind: ClientConfig
metadata:
  namespace: lab   # the lab's namespace
  name: ci-runner
endpoint: ${mock.endpoint}
tls:
  ca: ''
  insecure: false
token: ${token}  # rotated by the SDK
grpcOptions: {}
drivers:
  allow: [jumpstarter_driver_power.*, jumpstarter_driver_network.*]
  unsafe: false
shell:
  use_profiles: false
`;
}

async function writeClientFile(token: string, mode = 0o644): Promise<string> {
  await mkdir(join(home, "clients"), { recursive: true });
  const file = join(home, "clients", "lab.yaml");
  await writeFile(file, clientYaml(token), { mode });
  return file;
}

async function fromConfig(options: Parameters<typeof JumpstarterClient.fromConfig>[0] = {}): Promise<JumpstarterClient> {
  const client = await JumpstarterClient.fromConfig({ alias: "lab", env: { JMP_CLIENT_CONFIG_HOME: home }, ...options });
  clients.push(client);
  return client;
}

function inWindowToken(): Promise<string> {
  return mock.issueToken({ lifetimeMs: HOUR, issuedAt: new Date(Date.now() - 40 * MINUTE) });
}

async function folderEntries(): Promise<string[]> {
  return (await readdir(join(home, "clients"))).sort();
}

describe("token write-back", () => {
  describe("fromConfig", () => {
    it("writes the rotated token to the file", async () => {
      const file = await writeClientFile(mock.token);
      const client = await fromConfig();

      const rotated = await client.rotateToken();

      expect(await readFile(file, "utf8")).toBe(clientYaml(rotated.token));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("writes before onTokenRotated runs", async () => {
      const file = await writeClientFile(mock.token);
      let seenInFile = "";
      const client = await fromConfig({ onTokenRotated: async () => void (seenInFile = await readFile(file, "utf8")) });
      const rotated = await client.rotateToken();
      expect(seenInFile).toBe(clientYaml(rotated.token));
    });

    it("writes an automatic rotation", async () => {
      const file = await writeClientFile(await inWindowToken());
      const rotated = deferred<RotatedToken>();
      const client = await fromConfig({ onTokenRotated: (token) => rotated.resolve(token) });

      await client.getExporter("rpi4-01");
      const fresh = await rotated.promise;

      expect(await readFile(file, "utf8")).toBe(clientYaml(fresh.token));
    });

    it("leaves the file alone with writeBack false", async () => {
      const file = await writeClientFile(mock.token);
      const client = await fromConfig({ writeBack: false });
      await client.rotateToken();
      expect(await readFile(file, "utf8")).toBe(clientYaml(mock.token));
    });

    it("keeps a quoted token quoted", async () => {
      const file = await writeClientFile(mock.token);
      await writeFile(file, clientYaml(`"${mock.token}"`));
      const client = await fromConfig();
      const rotated = await client.rotateToken();
      expect(await readFile(file, "utf8")).toBe(clientYaml(`"${rotated.token}"`));
    });

    it("keeps the new token in memory when the file is gone", async () => {
      const file = await writeClientFile(mock.token);
      const logger = new RecordingLogger();
      const client = await fromConfig({ logger });
      await rm(file);

      const rotated = await client.rotateToken();
      await client.getExporter("rpi4-01");

      expect(mock.callsTo("GetExporter")[0]?.headers["authorization"]).toBe(`Bearer ${rotated.token}`);
      expect(logger.at("warn").map((r) => r.message)).toEqual([
        `could not write the rotated token to ${file}; it is kept in memory only: cannot read config file ${file} (ENOENT).`,
      ]);
      expect(logger.text()).not.toContain(rotated.token);
    });
  });

  describe("concurrent rotation", () => {
    it("loads the token another process wrote", async () => {
      // Only Date is faked, so the renewal timers (30 minutes away) stay idle and the calls below
      // decide when each client renews.
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
      const file = await writeClientFile(mock.token);
      const first = await fromConfig();
      const logger = new RecordingLogger();
      const second = await fromConfig({ logger });

      vi.setSystemTime(Date.now() + 31 * MINUTE);
      const rotated = await first.rotateToken();
      const loaded = logger.next("info");
      await second.getExporter("rpi4-01");
      await loaded;
      await second.getExporter("rpi4-01");

      expect(mock.callsTo("RotateToken")).toHaveLength(1);
      expect(mock.callsTo("GetExporter")[1]?.headers["authorization"]).toBe(`Bearer ${rotated.token}`);
      expect(await readFile(file, "utf8")).toBe(clientYaml(rotated.token));
      expect(logger.records.map((r) => r.message)).toEqual(["loaded the token that another process wrote to the config file"]);
    });

    it("rotates once for two clients at the threshold", async () => {
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
      const file = await writeClientFile(mock.token);
      const loggers = [new RecordingLogger(), new RecordingLogger()];
      const first = await fromConfig({ logger: loggers[0] });
      const second = await fromConfig({ logger: loggers[1] });

      vi.setSystemTime(Date.now() + 31 * MINUTE);
      const renewed = loggers.map((logger) => logger.next("info"));
      await Promise.all([first.getExporter("rpi4-01"), second.getExporter("rpi4-01")]);
      const notes = (await Promise.all(renewed)).map((record) => record.message).sort();
      mock.clearCalls();
      await first.getExporter("rpi4-01");
      await second.getExporter("rpi4-01");

      const stored = /^token: (\S+)/m.exec(await readFile(file, "utf8"))![1];
      expect(notes).toEqual(["loaded the token that another process wrote to the config file", "rotated the client token"]);
      expect(mock.callsTo("GetExporter").map((call) => call.headers["authorization"])).toEqual([`Bearer ${stored}`, `Bearer ${stored}`]);
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("keeps the other process's token over its own", async () => {
      const file = await writeClientFile(mock.token);
      const first = await fromConfig();
      const second = await fromConfig();

      const winner = await first.rotateToken();
      const result = await second.rotateToken();
      await second.getExporter("rpi4-01");

      expect(mock.callsTo("RotateToken")).toHaveLength(2);
      expect(result.token).toBe(winner.token);
      expect(await readFile(file, "utf8")).toBe(clientYaml(winner.token));
      expect(mock.callsTo("GetExporter")[0]?.headers["authorization"]).toBe(`Bearer ${winner.token}`);
    });
  });

  describe("writeTokenToFile", () => {
    it("keeps the file whole when the rename fails", async () => {
      const file = await writeClientFile("old-token");
      const failingRename: WriteBackFileSystem = {
        readFile: (path, encoding) => fs.readFile(path, encoding),
        open: (path, flags, mode) => fs.open(path, flags, mode),
        rm: (path, options) => fs.rm(path, options),
        rename: async () => {
          throw Object.assign(new Error("device or resource busy"), { code: "EBUSY" });
        },
      };

      const error = await writeTokenToFile(file, "old-token", "new-token", failingRename).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toBe(`cannot replace config file ${file} (EBUSY); the file was left unchanged.`);
      expect(await readFile(file, "utf8")).toBe(clientYaml("old-token"));
      expect((await stat(file)).mode & 0o777).toBe(0o644);
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("fails for real with a folder in the way", async () => {
      const folder = join(home, "clients", "lab.yaml");
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, "inside"), "kept");
      const readAsConfig: WriteBackFileSystem = {
        readFile: async () => clientYaml("old-token"),
        open: (path, flags, mode) => fs.open(path, flags, mode),
        rm: (path, options) => fs.rm(path, options),
        rename: (from, to) => fs.rename(from, to),
      };

      await expect(writeTokenToFile(folder, "old-token", "new-token", readAsConfig)).rejects.toThrow(/cannot replace config file .* \((EISDIR|ENOTEMPTY|EEXIST)\)/);

      expect(await readFile(join(folder, "inside"), "utf8")).toBe("kept");
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("returns the other token when the file changed", async () => {
      const file = await writeClientFile("their-token");
      expect(await writeTokenToFile(file, "old-token", "new-token")).toBe("their-token");
      expect(await readFile(file, "utf8")).toBe(clientYaml("their-token"));
    });

    it("replaces a block scalar", async () => {
      const file = join(home, "block.yaml");
      await writeFile(file, "kind: ClientConfig\ntoken: |\n  old-token\n# after\nendpoint: a:1\n");
      await writeTokenToFile(file, "old-token\n", "new-token");
      expect(await readFile(file, "utf8")).toBe('kind: ClientConfig\ntoken: "new-token"\n# after\nendpoint: a:1\n');
    });

    it("quotes a token that plain YAML cannot hold", async () => {
      const file = join(home, "plain.yaml");
      await writeFile(file, "kind: ClientConfig\ntoken: old-token # note\n");
      await writeTokenToFile(file, "old-token", "new: token #1");
      expect(await readFile(file, "utf8")).toBe('kind: ClientConfig\ntoken: "new: token #1" # note\n');
    });
  });

  describe("withFileLock", () => {
    it("runs tasks one at a time", async () => {
      const file = await writeClientFile("token");
      const events: string[] = [];
      const task = (name: string) => async () => {
        events.push(`${name} start`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        events.push(`${name} end`);
      };
      await Promise.all([withFileLock(file, task("a")), withFileLock(file, task("b"))]);
      // Either task may take the lock first, but the second starts only after the first ended.
      const first = events[0]!.split(" ")[0]!;
      const second = first === "a" ? "b" : "a";
      expect(events).toEqual([`${first} start`, `${first} end`, `${second} start`, `${second} end`]);
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("removes a lock left behind", async () => {
      const file = await writeClientFile("token");
      await writeFile(`${file}.lock`, "12345\n");
      const result = await withFileLock(file, async () => "ran", { staleMs: 100, waitMs: 10_000 });
      expect(result).toBe("ran");
      expect(await folderEntries()).toEqual(["lab.yaml"]);
    });

    it("gives up on a held lock", async () => {
      const file = await writeClientFile("token");
      await writeFile(`${file}.lock`, "12345\n");
      const error = await withFileLock(file, async () => "ran", { staleMs: 10_000, waitMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).retryable).toBe(true);
      expect((error as ConfigError).message).toContain("is locked by another process rotating its token");
    });

    it("runs without a lock in a read-only place", async () => {
      const result = await withFileLock(join(home, "missing-folder", "lab.yaml"), async () => "ran");
      expect(result).toBe("ran");
    });
  });
});
