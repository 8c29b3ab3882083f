import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { isScalar, type Document } from "yaml";
import { ConfigError } from "../errors.js";
import { parseConfigText } from "./config-file.js";

/** The file operations that the write-back uses; tests replace single steps to make them fail. */
export interface WriteBackFileSystem {
  readFile(path: string, encoding: "utf8"): Promise<string>;
  open(path: string, flags: string, mode: number): Promise<fs.FileHandle>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
}

/** Mode of a config file after the SDK wrote a token to it: readable and writable by its owner only. */
export const CONFIG_FILE_MODE = 0o600;

/**
 * Reads the `token` value of a client config file, or `undefined` when the key is absent.
 *
 * @throws ConfigError when the file cannot be read or parsed.
 */
export async function readTokenFromFile(file: string, fileSystem: WriteBackFileSystem = fs): Promise<string | undefined> {
  const document = parseConfigText(await readText(file, fileSystem), file);
  const token = document.get("token");
  return typeof token === "string" && token.length > 0 ? token : undefined;
}

/**
 * Replaces the token in a client config file, unless the file no longer contains `expected` because
 * another process rotated it, and returns the token that the file contains afterwards.
 *
 * Only the token's text changes: other keys, comments and layout stay as they were. The new text is
 * written to a temporary file in the same folder with mode 0600, flushed with fsync and renamed
 * over the old file, so a crash or a failed rename leaves the old file whole.
 *
 * @throws ConfigError when the file cannot be read, parsed or replaced.
 */
export async function writeTokenToFile(
  file: string,
  expected: string,
  token: string,
  fileSystem: WriteBackFileSystem = fs,
): Promise<string> {
  const text = await readText(file, fileSystem);
  const document = parseConfigText(text, file);
  const current = document.get("token");
  if (typeof current !== "string" || current.length === 0) {
    throw new ConfigError(`missing token in ${file}: the file changed since it was loaded, so it is left as it is.`, { file, key: "token" });
  }
  if (current !== expected) return current;

  // NOTE: SDK clients call this under the file's lock, but a writer that ignores the lock, such as
  // `jmp` itself, can still change the file before the rename. The last rename then wins, and the
  // other token stays valid until it expires, as every rotated token does.
  await replaceFile(file, replaceTokenText(text, document, token), fileSystem);
  return token;
}

async function readText(file: string, fileSystem: WriteBackFileSystem): Promise<string> {
  try {
    return await fileSystem.readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`cannot read config file ${file} (${code}).`, { file, cause: error });
  }
}

// Edits only the characters of the token's value, so the rest of the file stays byte for byte.
function replaceTokenText(text: string, document: Document.Parsed, token: string): string {
  const node = document.get("token", true);
  if (isScalar(node) && node.range) {
    const [start, valueEnd] = node.range;
    // A block scalar (`token: |`) ends with its line break, which the replacement must keep.
    const lineBreak = text.slice(start, valueEnd).endsWith("\n") ? "\n" : "";
    const edited = text.slice(0, start) + formatScalar(token, node.type) + lineBreak + text.slice(valueEnd);
    if (parseConfigText(edited, "the edited config").get("token") === token) return edited;
  }
  // Unusual layouts fall back to the YAML library's own output, which keeps keys and comments.
  document.set("token", token);
  return document.toString();
}

function formatScalar(token: string, type: string | undefined): string {
  if (type === "QUOTE_SINGLE") return `'${token.replaceAll("'", "''")}'`;
  if (type === "PLAIN" && /^[A-Za-z0-9_][A-Za-z0-9._~+/=-]*$/.test(token)) return token;
  // A JSON string is a valid YAML double-quoted scalar.
  return JSON.stringify(token);
}

async function replaceFile(file: string, text: string, fileSystem: WriteBackFileSystem): Promise<void> {
  const folder = dirname(file);
  const temporary = join(folder, `.${basename(file)}.${randomUUID()}.tmp`);

  try {
    const handle = await fileSystem.open(temporary, "wx", CONFIG_FILE_MODE);
    try {
      await handle.writeFile(text, "utf8");
      // The umask can only narrow the mode given to open; chmod makes it exactly 0600.
      await handle.chmod(CONFIG_FILE_MODE);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fileSystem.rename(temporary, file);
  } catch (error) {
    await fileSystem.rm(temporary, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`cannot replace config file ${file} (${code}); the file was left unchanged.`, { file, cause: error });
  }
  await syncFolder(folder, fileSystem);
}

// Flushes the folder entry so that the rename survives a crash. Not every platform can open a
// folder for this (Windows cannot), and the file itself is already safe, so failures are ignored.
async function syncFolder(folder: string, fileSystem: WriteBackFileSystem): Promise<void> {
  try {
    const handle = await fileSystem.open(folder, "r", 0);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // See above: the rename already happened.
  }
}
