import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { DatasetSource } from '../contracts/DatasetLoader.js';
import { ConfigError, FileAccessError } from '../errors/errors.js';
import { autoGlmConfigSchema, type AutoGlmConfig } from './configSchema.js';
import type { ConfigLocation, KeyPath, SourceLocator } from './ConfigLocation.js';
import { createYamlLocator } from './createYamlLocator.js';
import { describeExpectation, formatValidationIssues } from './formatValidationIssues.js';

/** A validated config and where it came from. */
export interface LoadedConfig {
  /** The config file, absolute. */
  readonly file: string;
  /** The config, defaults applied, every path absolute (resolved from the file's folder). */
  readonly config: AutoGlmConfig;
  /** Finds a key path in the file, for messages about it. */
  readonly locate: SourceLocator;
  /** A location to hand `validatePluginOptions` / `PluginRegistry.add` for a `with:` block. */
  locationOf(keyPath: KeyPath): ConfigLocation;
}

/**
 * Reads and validates an `autoglm.yaml`. Throws `FileAccessError` when the file cannot be read
 * and one `ConfigError` listing every problem (line, column, key path) when it is invalid.
 */
export async function loadConfig(file: string): Promise<LoadedConfig> {
  const absoluteFile = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absoluteFile, 'utf8');
  } catch (error) {
    throw new FileAccessError(
      `Cannot read the config file ${absoluteFile}: ${readFailureReason(error)}. ` +
        `Check the path (a relative path is resolved from the working directory ${process.cwd()}).`,
      { cause: error, file: absoluteFile },
    );
  }
  return parseConfigText(text, absoluteFile);
}

/** Parses and validates config text as if it were the file `file` (paths resolve from its folder). */
export function parseConfigText(text: string, file: string): LoadedConfig {
  const absoluteFile = path.resolve(file);
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: true });
  const [syntaxError] = document.errors;
  if (syntaxError !== undefined) {
    throw new ConfigError(`The config file ${absoluteFile} is not valid YAML: ${describeYamlError(syntaxError)}`, {
      cause: syntaxError,
      file: absoluteFile,
    });
  }
  const locate = createYamlLocator(document, lineCounter);
  let raw: unknown;
  try {
    raw = document.toJS();
  } catch (error) {
    // toJS fails on documents YAML accepts but JSON cannot hold, such as alias bombs.
    throw new ConfigError(`The config file ${absoluteFile} cannot be read as data: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      file: absoluteFile,
    });
  }
  const config = validateConfig(raw, { baseDir: path.dirname(absoluteFile), file: absoluteFile, locate });
  return {
    file: absoluteFile,
    config,
    locate,
    locationOf: (keyPath) => ({ file: absoluteFile, keyPath, locate }),
  };
}

export interface ValidateConfigOptions {
  /** Folder relative paths in the config are resolved from. */
  readonly baseDir: string;
  /** The file the config came from, for messages. */
  readonly file?: string;
  readonly locate?: SourceLocator;
}

/** Validates a config object (from YAML or built in code) and makes its paths absolute. */
export function validateConfig(raw: unknown, options: ValidateConfigOptions): AutoGlmConfig {
  if (raw === null || raw === undefined) {
    throw new ConfigError(
      `${options.file === undefined ? 'The config' : `The config file ${options.file}`} is empty: ` +
        'it needs at least model, data, objectives, search and passes (`autoglm schema` prints the JSON Schema of the config).',
      options.file === undefined ? {} : { file: options.file },
    );
  }
  const result = autoGlmConfigSchema.safeParse(raw, { error: describeExpectation });
  if (!result.success) {
    const lines = formatValidationIssues(result.error.issues, {
      schema: autoGlmConfigSchema,
      value: raw,
      keyPath: [],
      ...(options.locate === undefined ? {} : { locate: options.locate }),
    });
    throw new ConfigError(
      `${options.file === undefined ? 'The config is invalid' : `Invalid config file ${options.file}`}:\n` +
        `${lines.map((line) => `  ${line}`).join('\n')}\n` +
        'Fix the keys above; the JSON Schema of the config (`autoglm schema`) lists every key and value allowed.',
      options.file === undefined ? {} : { file: options.file },
    );
  }
  return resolveConfigPaths(result.data, options.baseDir);
}

function resolveConfigPaths(config: AutoGlmConfig, baseDir: string): AutoGlmConfig {
  const resolve = (file: string): string => path.resolve(baseDir, file);
  const resolveInputs = (x: string | Readonly<Record<string, string>>): string | Record<string, string> =>
    typeof x === 'string' ? resolve(x) : Object.fromEntries(Object.entries(x).map(([input, file]) => [input, resolve(file)]));
  const resolveSource = <T extends DatasetSource>(source: T): T => ({
    ...source,
    x: resolveInputs(source.x),
    ...(source.y === undefined ? {} : { y: resolve(source.y) }),
  });
  return {
    ...config,
    model: resolve(config.model),
    data: {
      ...(config.data.train === undefined ? {} : { train: resolveSource(config.data.train) }),
      ...(config.data.calib === undefined ? {} : { calib: resolveSource(config.data.calib) }),
      val: resolveSource(config.data.val),
    },
    output: resolve(config.output),
  };
}

function readFailureReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'the file does not exist';
    case 'EISDIR':
      return 'it is a folder, not a file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** `line 5, column 26: <what yaml says>` followed by yaml's excerpt with a caret. */
function describeYamlError(error: YAMLError): string {
  const [firstLine = error.message, ...excerpt] = error.message.split('\n');
  const problem = firstLine.replace(/ at line \d+, column \d+:?$/, '');
  const position = error.linePos?.[0];
  const where = position === undefined ? '' : `line ${position.line}, column ${position.col}: `;
  const frame = excerpt.filter((line) => line.trim() !== '').join('\n');
  return `${where}${problem}${frame === '' ? '' : `\n${frame}`}\nFix the YAML syntax at that line.`;
}
