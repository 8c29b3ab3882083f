import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { ConfigError } from "../errors.js";

/** Environment variable that names the `jmp` config folder, ahead of `XDG_CONFIG_HOME`. */
export const CONFIG_HOME_ENV_VAR = "JMP_CLIENT_CONFIG_HOME";

/**
 * Returns the folder of the `jmp` client configuration: `$JMP_CLIENT_CONFIG_HOME`, else
 * `$XDG_CONFIG_HOME/jumpstarter`, else `~/.config/jumpstarter`. A relative `XDG_CONFIG_HOME` is
 * ignored, as the XDG base directory specification requires.
 */
export function resolveConfigHome(env: NodeJS.ProcessEnv, homeDir: string = homedir()): string {
  const explicit = env[CONFIG_HOME_ENV_VAR];
  if (explicit) return explicit;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "jumpstarter");
  return join(homeDir, ".config", "jumpstarter");
}

// `jmp` names client files after their alias; anything that could leave the clients folder is refused.
const ALIAS_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Returns the path of the client config file of `alias`: `<home>/clients/<alias>.yaml`.
 *
 * @throws ConfigError for an alias that is empty or contains a path separator.
 */
export function clientConfigPath(home: string, alias: string): string {
  if (typeof alias !== "string" || !ALIAS_PATTERN.test(alias)) {
    throw new ConfigError(
      `invalid client alias ${JSON.stringify(alias)}: expected letters, digits, ".", "_" or "-", as in \`jmp config client list\`.`,
      { key: "alias" },
    );
  }
  return join(home, "clients", `${alias}.yaml`);
}

/** Returns the path of the user config file, which names the current client: `<home>/config.yaml`. */
export function userConfigPath(home: string): string {
  return join(home, "config.yaml");
}
