/**
 * Destination of the SDK's log records. `console` and pino loggers fit as they are. Each method takes
 * a message and optional structured fields; tokens are never passed to it.
 */
export interface Logger {
  /** Records detail for troubleshooting. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Records a normal event worth knowing about. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Records a problem that the SDK worked around. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Records a failure. */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Environment variable that turns on debug output to stderr when set to `1`, `true` or `debug`. */
export const DEBUG_ENV_VAR = "JUMPSTARTER_SDK_DEBUG";

const noop = (): void => {};

/** A logger that discards everything; the default, because a library should be silent. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

function stderrLogger(): Logger {
  const write =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const suffix = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
      process.stderr.write(`[jumpstarter-sdk] ${level} ${message}${suffix}\n`);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/**
 * Picks the logger of a client: the one given, else a stderr logger when `JUMPSTARTER_SDK_DEBUG`
 * is set, else the silent logger.
 */
export function resolveLogger(logger: Logger | undefined, env: NodeJS.ProcessEnv = process.env): Logger {
  if (logger) return logger;
  const flag = env[DEBUG_ENV_VAR]?.toLowerCase();
  return flag === "1" || flag === "true" || flag === "debug" ? stderrLogger() : silentLogger;
}
