import { inspect } from "node:util";
import type { Document } from "yaml";
import { ConfigError, isJumpstarterError } from "../errors.js";
import { validateNamespace } from "../names.js";
import { parseEndpoint } from "../transport.js";
import { ConfigReader } from "./config-file.js";

/** Settings of one Jumpstarter client, read from a `jmp` client config file or the environment. */
export interface ClientConfigFields {
  /** Path of the client config file; `undefined` for a config from environment variables. */
  file: string | undefined;
  /** Alias of the client (its file name without `.yaml`), when known. */
  alias: string | undefined;
  /** `metadata.namespace`. */
  namespace: string;
  /** `metadata.name`: the client object's name. */
  name: string;
  /** `endpoint`: the controller's `host:port`, which means TLS. */
  endpoint: string;
  /**
   * `tls.ca` decoded to PEM text, when the file has one, and `insecure` from `tls.insecure` or
   * `JMP_GRPC_INSECURE=1`, which skips verification of the controller's certificate.
   */
  tls: { ca: string | undefined; insecure: boolean };
  /** `leases.acquisition_timeout` converted from seconds to milliseconds, when set. */
  leaseTimeoutMs: number | undefined;
  token: string;
}

/**
 * A `jmp` client configuration. The token is readable as `config.token`, but `util.inspect`,
 * `console.log` and `JSON.stringify` show `[redacted]` in its place.
 */
export class ClientConfig {
  readonly file: string | undefined;
  readonly alias: string | undefined;
  readonly namespace: string;
  readonly name: string;
  readonly endpoint: string;
  readonly tls: { readonly ca: string | undefined; readonly insecure: boolean };
  readonly leaseTimeoutMs: number | undefined;
  readonly #token: string;

  constructor(fields: ClientConfigFields) {
    this.file = fields.file;
    this.alias = fields.alias;
    this.namespace = fields.namespace;
    this.name = fields.name;
    this.endpoint = fields.endpoint;
    this.tls = Object.freeze({ ...fields.tls });
    this.leaseTimeoutMs = fields.leaseTimeoutMs;
    this.#token = fields.token;
  }

  /** The client's bearer token. */
  get token(): string {
    return this.#token;
  }

  /** Describes the configuration with the token replaced by `[redacted]`. */
  toJSON(): Record<string, unknown> {
    return {
      file: this.file,
      alias: this.alias,
      namespace: this.namespace,
      name: this.name,
      endpoint: this.endpoint,
      tls: this.tls,
      leaseTimeoutMs: this.leaseTimeoutMs,
      token: "[redacted]",
    };
  }

  [inspect.custom](depth: number, options: Parameters<typeof inspect>[1]): string {
    return `ClientConfig ${inspect(this.toJSON(), { ...options, depth })}`;
  }
}

/** Kind of a `jmp` client config file. */
export const CLIENT_CONFIG_KIND = "ClientConfig";

/** Environment variable that turns on insecure TLS when set to `1` (or `true`), as `jmp` reads it. */
export const GRPC_INSECURE_ENV_VAR = "JMP_GRPC_INSECURE";

/**
 * Reads a parsed `jmp` client config file (`kind: ClientConfig`). Keys other than those of
 * {@link ClientConfigFields} are ignored.
 *
 * @throws ConfigError naming the file and the key for a wrong kind, a missing or invalid key, or a
 *   CA that is not a base64-encoded PEM bundle.
 */
export function parseClientConfig(document: Document.Parsed, file: string, alias: string | undefined, env: NodeJS.ProcessEnv): ClientConfig {
  const reader = new ConfigReader(document, file);
  reader.requireKind(CLIENT_CONFIG_KIND);

  const namespace = reader.string("metadata.namespace", "set it to the client's Kubernetes namespace, or create the file with `jmp config client create`.")!;
  checkWith(reader, "metadata.namespace", () => validateNamespace(namespace));
  const name = reader.string("metadata.name", "set it to the client's name, or create the file with `jmp config client create`.")!;
  const endpoint = reader.string("endpoint", 'set it to the controller\'s "host:port".')!;
  checkWith(reader, "endpoint", () => parseEndpoint(endpoint));
  const token = reader.string("token", "log in with `jmp login` to store a token, or ask an administrator for one.")!;

  const ca = reader.string("tls.ca");
  const timeoutSeconds = reader.number("leases.acquisition_timeout");
  if (timeoutSeconds !== undefined && timeoutSeconds <= 0) {
    throw reader.error("leases.acquisition_timeout", `invalid leases.acquisition_timeout ${timeoutSeconds} in ${file}: expected a number of seconds > 0.`);
  }

  return new ClientConfig({
    file,
    alias,
    namespace,
    name,
    endpoint,
    tls: {
      ca: ca === undefined ? undefined : decodeCaBundle(reader, ca),
      insecure: (reader.boolean("tls.insecure") ?? false) || insecureFromEnv(env),
    },
    leaseTimeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000,
    token,
  });
}

/**
 * Builds a client configuration from environment variables alone: `JMP_NAMESPACE`, `JMP_NAME`,
 * `JMP_ENDPOINT`, `JMP_TOKEN` and optionally `JMP_GRPC_INSECURE`.
 *
 * @throws ConfigError naming the variable that is missing or invalid.
 */
export function clientConfigFromEnv(env: NodeJS.ProcessEnv): ClientConfig {
  const read = (key: string, hint: string): string => {
    const value = env[key];
    if (!value) throw new ConfigError(`missing ${key} in the environment: ${hint}`, { key });
    return value;
  };
  const namespace = read("JMP_NAMESPACE", "set it to the client's Kubernetes namespace.");
  checkEnv("JMP_NAMESPACE", () => validateNamespace(namespace));
  const name = read("JMP_NAME", "set it to the client's name.");
  const endpoint = read("JMP_ENDPOINT", 'set it to the controller\'s "host:port" when JMP_NAMESPACE and JMP_NAME are set.');
  checkEnv("JMP_ENDPOINT", () => parseEndpoint(endpoint));
  const token = read("JMP_TOKEN", "set it to the client's token when JMP_NAMESPACE and JMP_NAME are set.");

  return new ClientConfig({
    file: undefined,
    alias: undefined,
    namespace,
    name,
    endpoint,
    tls: { ca: undefined, insecure: insecureFromEnv(env) },
    leaseTimeoutMs: undefined,
    token,
  });
}

function insecureFromEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env[GRPC_INSECURE_ENV_VAR]?.toLowerCase();
  return value === "1" || value === "true";
}

// `jmp` stores the CA bundle as base64 of the PEM text. Node's decoder skips invalid characters
// instead of failing, so the alphabet and the PEM header are checked explicitly.
function decodeCaBundle(reader: ConfigReader, encoded: string): string {
  const compact = encoded.replace(/\s+/g, "");
  const pem = /^[A-Za-z0-9+/]*={0,2}$/.test(compact) ? Buffer.from(compact, "base64").toString("utf8") : "";
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw reader.error("tls.ca", `unreadable CA in tls.ca of ${reader.file}: expected a base64-encoded PEM certificate bundle.`);
  }
  return pem;
}

// Runs an SDK validator and rethrows its complaint as a ConfigError that names the file and key.
function checkWith(reader: ConfigReader, key: string, validate: () => unknown): void {
  try {
    validate();
  } catch (error) {
    if (!isJumpstarterError(error)) throw error;
    throw reader.error(key, `invalid ${key} in ${reader.file}: ${error.message}`, error);
  }
}

function checkEnv(key: string, validate: () => unknown): void {
  try {
    validate();
  } catch (error) {
    if (!isJumpstarterError(error)) throw error;
    throw new ConfigError(`invalid ${key} in the environment: ${error.message}`, { key, cause: error });
  }
}
