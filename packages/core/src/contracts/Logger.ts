/** Structured context attached to a log line (`{ trial: 3, pass: 'quantizer-int8' }`). */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * Where plugins report progress. The CLI binds one under `LoggerToken` on the root container,
 * so every plugin's factories can resolve it; tests use `silentLogger`.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const ignore = (): void => {};

/** A logger that drops everything. */
export const silentLogger: Logger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });
