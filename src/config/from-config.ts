import type { JumpstarterClient, JumpstarterClientOptions } from "../client.js";
import { TOKEN_STORE, type TokenStore } from "../credentials/token-store.js";
import { ConfigFileTokenStore } from "./config-token-store.js";
import { loadClientConfig, type LoadClientConfigOptions } from "./load-client-config.js";

/**
 * Options of `JumpstarterClient.fromConfig()`: which configuration to read, and the client options
 * that a config file does not set.
 */
export interface FromConfigOptions
  extends LoadClientConfigOptions,
    Omit<JumpstarterClientOptions, "endpoint" | "namespace" | "token" | "clientName" | "tls" | "transport" | "allowInsecureTransport"> {
  /**
   * Write each rotated token back to the client config file, so that the next process starts
   * with it. Default `true`. A config from environment variables has no file to write to.
   */
  writeBack?: boolean;
}

/** Client options plus the internal token store, which only `fromConfig()` sets. */
export type InternalClientOptions = JumpstarterClientOptions & { [TOKEN_STORE]?: TokenStore };

/**
 * Reads a `jmp` client configuration (see `loadClientConfig`) and creates a client from it with
 * `construct`, which keeps this module free of a runtime import of the client.
 */
export async function createClientFromConfig(
  options: FromConfigOptions,
  construct: (options: JumpstarterClientOptions) => JumpstarterClient,
): Promise<JumpstarterClient> {
  const { alias, path, env, homeDir, writeBack, ...clientOptions } = options;
  const config = await loadClientConfig({ alias, path, env, homeDir });

  const store = writeBack !== false && config.file !== undefined ? new ConfigFileTokenStore(config.file, config.token) : undefined;
  const internal: InternalClientOptions = {
    ...clientOptions,
    endpoint: config.endpoint,
    namespace: config.namespace,
    clientName: config.name,
    token: config.token,
    tls: { ca: config.tls.ca, insecure: config.tls.insecure },
    leaseTimeoutMs: clientOptions.leaseTimeoutMs ?? config.leaseTimeoutMs,
    [TOKEN_STORE]: store,
  };
  return construct(internal);
}
