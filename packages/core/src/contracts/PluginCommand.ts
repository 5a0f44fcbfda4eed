import type { JsonValue } from './JsonValue.js';
import type { Logger } from './Logger.js';

/**
 * A command a plugin contributes to the `autoglm` CLI (`autoglm quantize ...`), declared without
 * depending on a CLI library: the CLI loads the plugin when its command is invoked, builds the
 * command from this description and calls `run`. The CLI itself adds `--json` and `--verbose`.
 */

/** A positional argument (`<model>`). */
export interface CommandArgumentSpec {
  readonly name: string;
  readonly description: string;
  /** Defaults to true. */
  readonly required?: boolean;
  /** The last argument may take the remaining words. */
  readonly variadic?: boolean;
}

/** An option, in the usual flag syntax: `--calib <file>`, `--per-tensor`, `--exclude <names...>`. */
export interface CommandOptionSpec {
  readonly flags: string;
  readonly description: string;
  readonly defaultValue?: string | boolean | readonly string[];
  /** A required option (`--out <file>`): the CLI refuses to run without it. */
  readonly required?: boolean;
}

/** Parsed option values by camel-cased long name (`--per-tensor` -> `perTensor`). */
export type CommandOptionValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

export interface CommandInvocation {
  /** Positional arguments in declaration order (a variadic one contributes all its words). */
  readonly args: readonly string[];
  readonly options: CommandOptionValues;
  /** The folder relative paths in arguments and options are resolved from. */
  readonly cwd: string;
  /** Progress goes here (stderr in the CLI), so that `--json` output stays one document. */
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface CommandResult {
  /** What the CLI prints without `--json`: a few readable lines or a table. */
  readonly summary: string;
  /** What the CLI prints with `--json`, as one document. */
  readonly data: JsonValue;
}

export interface PluginCommand {
  /** The subcommand word (`quantize`); lowercase letters and dashes. */
  readonly name: string;
  /** One line for `autoglm --help`. */
  readonly summary: string;
  readonly arguments: readonly CommandArgumentSpec[];
  readonly options: readonly CommandOptionSpec[];
  /** Does the work. User errors are thrown as `AutoGlmError`s (one message, exit code 1). */
  run(invocation: CommandInvocation): Promise<CommandResult>;
}
