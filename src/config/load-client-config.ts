import { homedir } from "node:os";
import { ConfigError } from "../errors.js";
import { clientConfigFromEnv, parseClientConfig, type ClientConfig } from "./client-config.js";
import { ConfigReader, readConfigDocument } from "./config-file.js";
import { clientConfigPath, resolveConfigHome, userConfigPath } from "./config-home.js";

/** Options of {@link loadClientConfig}: which client configuration to read. */
export interface LoadClientConfigOptions {
  /** Alias of the client: reads `<config home>/clients/<alias>.yaml`. Default: see {@link loadClientConfig}. */
  alias?: string;
  /** Path of a client config file to read instead of looking one up by alias. */
  path?: string;
  /** Environment to read `JMP_*` and `XDG_CONFIG_HOME` from. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Home folder under which `.config/jumpstarter` is looked for. Default: `os.homedir()`. */
  homeDir?: string;
}

/** Kind of the `jmp` user config file, which names the current client. */
export const USER_CONFIG_KIND = "UserConfig";

/**
 * Reads the client configuration that `jmp` writes.
 *
 * The config folder is `$JMP_CLIENT_CONFIG_HOME`, else `$XDG_CONFIG_HOME/jumpstarter`, else
 * `~/.config/jumpstarter`. With `path`, that file is read. With `alias`, `clients/<alias>.yaml` in
 * the folder is read. With neither, the environment alone is used when `JMP_NAMESPACE` and
 * `JMP_NAME` are set, and then `JMP_ENDPOINT` and `JMP_TOKEN` are required. Otherwise the alias is
 * `config.current-client` of the user config `config.yaml`. `JMP_GRPC_INSECURE=1` turns on
 * insecure TLS in every case.
 *
 * @throws ConfigError naming the file and key for a missing file, a missing key, invalid YAML, a
 *   wrong `kind` or an unreadable CA.
 */
export async function loadClientConfig(options: LoadClientConfigOptions = {}): Promise<ClientConfig> {
  const env = options.env ?? process.env;
  if (options.path !== undefined && options.alias !== undefined) {
    throw new ConfigError("pass either alias or path to load a client config, not both.", { key: "alias" });
  }
  if (options.path !== undefined) {
    return readClientConfigFile(options.path, undefined, env);
  }

  const home = resolveConfigHome(env, options.homeDir ?? homedir());
  if (options.alias !== undefined) {
    return readClientConfigFile(clientConfigPath(home, options.alias), options.alias, env);
  }
  if (env.JMP_NAMESPACE && env.JMP_NAME) {
    return clientConfigFromEnv(env);
  }

  const alias = await readCurrentClient(userConfigPath(home));
  return readClientConfigFile(clientConfigPath(home, alias), alias, env);
}

async function readClientConfigFile(file: string, alias: string | undefined, env: NodeJS.ProcessEnv): Promise<ClientConfig> {
  const hint = alias === undefined ? "check the path." : `create it with \`jmp config client create ${alias}\`, or pick another alias.`;
  const document = await readConfigDocument(file, hint);
  return parseClientConfig(document, file, alias, env);
}

async function readCurrentClient(file: string): Promise<string> {
  const document = await readConfigDocument(
    file,
    "pass { alias } or { path }, select a client with `jmp config client use <alias>`, or set JMP_NAMESPACE, JMP_NAME, JMP_ENDPOINT and JMP_TOKEN.",
  );
  const reader = new ConfigReader(document, file);
  reader.requireKind(USER_CONFIG_KIND);
  return reader.string("config.current-client", "select a client with `jmp config client use <alias>`, or pass { alias }.")!;
}
