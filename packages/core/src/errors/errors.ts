/**
 * Typed errors of Open-AutoGLM. Every message says what failed, why, and what to do next; the
 * CLI prints `message` alone for these (the stack only with `--verbose`), so a message must stand
 * on its own.
 */

export interface AutoGlmErrorOptions {
  /** The underlying error, kept so `--verbose` can show the whole chain. */
  cause?: unknown;
  /** The file the problem is in, when there is one (model, data, config). */
  file?: string;
}

/** Base class of every error Open-AutoGLM raises on purpose. */
export class AutoGlmError extends Error {
  /** The file the problem is in, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, options: AutoGlmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.file = options.file;
  }
}

/** A file that does not exist or cannot be read. */
export class FileAccessError extends AutoGlmError {}
/** A configuration file (YAML) or options object that does not match its schema. */
export class ConfigError extends AutoGlmError {}
/** A model file that is not valid ONNX, or that uses something not supported. */
export class ModelFormatError extends AutoGlmError {}
/** External tensor data that is missing, malformed, or points outside the model's folder. */
export class ExternalDataError extends AutoGlmError {}
/** A dataset file (.npy / .npz) that is malformed or does not fit the model or its labels. */
export class DatasetError extends AutoGlmError {}
/** A failure while running a model in the runtime (session creation or inference). */
export class RuntimeExecutionError extends AutoGlmError {}
/** A plugin that cannot be found, loaded, or that breaks the plugin contract. */
export class PluginError extends AutoGlmError {}
/** An operation not supported for this graph (an op without shape rule, a transform that does not apply). */
export class UnsupportedOperationError extends AutoGlmError {}
/** A study storage that cannot be opened, is corrupted, or refuses an update (unknown id, finished trial). */
export class StudyStorageError extends AutoGlmError {}

/** True for errors raised on purpose (user-facing); false for bugs and foreign errors. */
export function isAutoGlmError(error: unknown): error is AutoGlmError {
  return error instanceof AutoGlmError;
}
