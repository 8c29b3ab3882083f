import { readFile } from "node:fs/promises";
import { isMap, isSeq, parseDocument, type Document } from "yaml";
import { ConfigError } from "../errors.js";

/** The group that every `jmp` config file's `apiVersion` belongs to, such as `jumpstarter.dev/v1alpha1`. */
export const CONFIG_API_GROUP = "jumpstarter.dev";

/**
 * Reads and parses a YAML config file.
 *
 * @throws ConfigError naming the file when it is missing, unreadable, not valid YAML or not a mapping.
 */
export async function readConfigDocument(file: string, hint: string): Promise<Document.Parsed> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === "ENOENT" ? "not found" : `cannot be read (${code ?? String(error)})`;
    throw new ConfigError(`config file ${file} ${problem}; ${hint}`, { file, cause: error });
  }
  return parseConfigText(text, file);
}

/**
 * Parses the text of a YAML config file.
 *
 * @throws ConfigError naming the file and the line when the text is not valid YAML or not a mapping.
 */
export function parseConfigText(text: string, file: string): Document.Parsed {
  const document = parseDocument(text, { prettyErrors: true });
  const [error] = document.errors;
  if (error !== undefined) {
    // The parser's own message quotes the offending line, which may be the token line, so only
    // the position and the error code are reported.
    const at = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : "";
    throw new ConfigError(`invalid YAML in ${file}${at} (${error.code}); fix the file or write it again with \`jmp\`.`, { file });
  }
  if (!isMap(document.contents)) {
    throw new ConfigError(`invalid config file ${file}: expected a YAML mapping of keys such as apiVersion and kind.`, { file });
  }
  return document;
}

/** Typed access to the keys of one parsed config file; every error names the file and the key. */
export class ConfigReader {
  constructor(
    readonly document: Document.Parsed,
    readonly file: string,
  ) {}

  /**
   * Reads a string at a dotted key path such as `metadata.namespace`. Absent and `null` values
   * are `undefined`.
   *
   * @throws ConfigError when the value is not a string, or is missing while `required` is given
   *   (`required` is the text that explains how to fix the file).
   */
  string(key: string, required?: string): string | undefined {
    const value = this.value(key);
    if (value === undefined || value === null || value === "") {
      if (required !== undefined) throw this.error(key, `missing ${key} in ${this.file}; ${required}`);
      return undefined;
    }
    if (typeof value !== "string") throw this.error(key, `invalid ${key} in ${this.file}: expected a string, got ${describe(value)}.`);
    return value;
  }

  /** Reads a boolean, `undefined` when absent. @throws ConfigError for a value that is not `true` or `false`. */
  boolean(key: string): boolean | undefined {
    const value = this.value(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") throw this.error(key, `invalid ${key} in ${this.file}: expected true or false, got ${describe(value)}.`);
    return value;
  }

  /** Reads a number, `undefined` when absent. @throws ConfigError for a value that is not a finite number. */
  number(key: string): number | undefined {
    const value = this.value(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw this.error(key, `invalid ${key} in ${this.file}: expected a number, got ${describe(value)}.`);
    }
    return value;
  }

  /**
   * Checks `apiVersion` and `kind`.
   *
   * @throws ConfigError when `kind` is not `expectedKind`, or `apiVersion` is outside `jumpstarter.dev`.
   */
  requireKind(expectedKind: string): void {
    const apiVersion = this.string("apiVersion");
    if (apiVersion !== undefined && !apiVersion.startsWith(`${CONFIG_API_GROUP}/`)) {
      throw this.error("apiVersion", `invalid apiVersion "${apiVersion}" in ${this.file}: expected ${CONFIG_API_GROUP}/v1alpha1.`);
    }
    const kind = this.string("kind", `expected kind: ${expectedKind}.`);
    if (kind !== expectedKind) {
      throw this.error("kind", `wrong kind "${kind}" in ${this.file}: expected ${expectedKind}. Check that the file is the one you meant.`);
    }
  }

  /** Creates a ConfigError about `key` of this file. */
  error(key: string, message: string, cause?: unknown): ConfigError {
    return new ConfigError(message, { file: this.file, key, cause });
  }

  private value(key: string): unknown {
    return this.document.getIn(key.split("."));
  }
}

// Describes a wrong value by its type, never by its text: a misplaced token must not reach a message.
function describe(value: unknown): string {
  if (Array.isArray(value) || isSeq(value)) return "a list";
  if (value !== null && typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}
