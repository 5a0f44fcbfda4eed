import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import { formatKeyPath, type KeyPath } from '../config/ConfigLocation.js';
import type { LoadedConfig } from '../config/loadConfig.js';
import type { Dataset, DatasetLoader, DatasetSource, DatasetSplit } from '../contracts/DatasetLoader.js';
import type { Evaluator } from '../contracts/Evaluator.js';
import type { Logger } from '../contracts/Logger.js';
import type { ModelArtifact } from '../contracts/ModelArtifact.js';
import { ModelInspectorToken, type ModelInspector } from '../contracts/ModelInspector.js';
import type { Pass } from '../contracts/Pass.js';
import type { Strategy } from '../contracts/Strategy.js';
import type { Target } from '../contracts/Target.js';
import { ConfigError, DatasetError, FileAccessError, PluginError } from '../errors/errors.js';
import { assemblePlugins, type AssembledPlugins } from '../plugin/assemblePlugins.js';
import { DatasetLoaderToken, EvaluatorToken, LoggerToken, PassToken, StrategyToken, TargetToken } from '../plugin/coreTokens.js';
import { loadPlugin } from '../plugin/loadPlugin.js';
import type { Plugin } from '../plugin/definePlugin.js';
import { registerValue } from '../plugin/tokenBindings.js';

/** The package whose default export is the engine plugin (target, evaluator, datasets, inspector). */
const defaultEnginePlugin = '@open-autoglm/runtime';

/** One pass of the config, ready to apply. */
export interface PipelinePass {
  /** Prefix of its parameters in the study (`pruner-structured`). */
  readonly prefix: string;
  /** Plugin name, version and options: what the cache key and the report name. */
  readonly identity: string;
  readonly pass: Pass;
}

/** Everything a run needs, loaded and checked before the first trial. */
export interface PreparedPipeline {
  readonly plugins: AssembledPlugins;
  readonly engine: Plugin;
  readonly passes: readonly PipelinePass[];
  readonly strategy: Strategy;
  readonly target: Target;
  readonly evaluator: Evaluator;
  readonly inspector: ModelInspector;
  readonly datasets: Readonly<Partial<Record<DatasetSplit, Dataset>>>;
  readonly model: ModelArtifact;
}

export interface PreparePipelineOptions {
  readonly container: DependencyContainer;
  readonly logger: Logger;
  /** Plugin specifier of the engine; default `@open-autoglm/runtime`. */
  readonly engine?: string;
}

/**
 * Loads and checks everything a config names, so that a mistake fails before any trial runs
 * with the YAML key path, the line and the fix: the plugins and their options (all problems in
 * one message; an unknown plugin prints its install command), the engine, the model and every
 * data file.
 */
export async function preparePipeline(loaded: LoadedConfig, options: PreparePipelineOptions): Promise<PreparedPipeline> {
  const { config } = loaded;
  registerValue(options.container, LoggerToken, options.logger);
  await checkInputFiles(loaded);
  const plugins = await assemblePlugins(loaded, options.container);
  const configDir = path.dirname(loaded.file);
  const engine = await loadPlugin(options.engine ?? defaultEnginePlugin, { configDir, configFile: loaded.file });
  for (const token of [TargetToken, EvaluatorToken, DatasetLoaderToken, ModelInspectorToken]) {
    if (!engine.provides.some((provided) => provided.id === token.id)) {
      throw new PluginError(
        `The engine plugin ${engine.name} does not provide ${token.toString()}. Use ${defaultEnginePlugin}, or an engine that provides a target, an evaluator, a dataset loader and a model inspector.`,
      );
    }
  }
  plugins.registry.add(engine, config.target, { location: loaded.locationOf(['target']) });

  const loaders = plugins.registry.resolveAll(DatasetLoaderToken).map((provided) => provided.value);
  const datasets: Partial<Record<DatasetSplit, Dataset>> = {};
  for (const split of ['train', 'calib', 'val'] as const) {
    const source = config.data[split];
    if (source !== undefined) datasets[split] = await loadSplit(loaded, split, source, loaders);
  }
  const bytes = await readFile(config.model);
  const prefixes = new Map<string, number>();
  const passes = plugins.passes.map((assembled, index): PipelinePass => {
    const base = assembled.specifier.startsWith('.') || path.isAbsolute(assembled.specifier) ? assembled.plugin.name.replace(/^@[^/]+\//, '') : assembled.specifier.replace(/^@open-autoglm\//, '');
    const seen = prefixes.get(base) ?? 0;
    prefixes.set(base, seen + 1);
    const options = config.passes[index]?.with ?? {};
    return {
      prefix: seen === 0 ? base : `${base}-${seen + 1}`,
      identity: `${assembled.plugin.name}@${assembled.plugin.version} ${JSON.stringify(options)}`,
      pass: plugins.registry.resolve(assembled.plugin, PassToken),
    };
  });
  return {
    plugins,
    engine,
    passes,
    strategy: plugins.registry.resolve(plugins.search.plugin, StrategyToken),
    target: plugins.registry.resolve(engine, TargetToken),
    evaluator: plugins.registry.resolve(engine, EvaluatorToken),
    inspector: plugins.registry.resolve(engine, ModelInspectorToken),
    datasets,
    model: { path: config.model, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
  };
}

/** Every file the config names exists, or one ConfigError lists those that do not, by key path and line. */
async function checkInputFiles(loaded: LoadedConfig): Promise<void> {
  const { config } = loaded;
  const files: Array<{ keyPath: KeyPath; file: string }> = [{ keyPath: ['model'], file: config.model }];
  for (const [split, source] of Object.entries(config.data)) {
    if (source === undefined) continue;
    if (typeof source.x === 'string') files.push({ keyPath: ['data', split, 'x'], file: source.x });
    else for (const [input, file] of Object.entries(source.x)) files.push({ keyPath: ['data', split, 'x', input], file });
    if (source.y !== undefined) files.push({ keyPath: ['data', split, 'y'], file: source.y });
  }
  const missing: string[] = [];
  for (const { keyPath, file } of files) {
    // An .npz member (`set.npz:x`) lives in the archive file.
    const onDisk = file.replace(/(\.npz):[^/\\]+$/i, '$1');
    try {
      await access(onDisk);
    } catch {
      missing.push(`${describeKey(loaded, keyPath)}: ${onDisk} does not exist`);
    }
  }
  if (missing.length > 0) {
    throw new FileAccessError(
      `Files named in ${loaded.file} are missing:\n${missing.map((line) => `  ${line}`).join('\n')}\n` +
        'Fix the paths (relative paths are resolved from the config file\'s folder) or create the files.',
      { file: loaded.file },
    );
  }
}

async function loadSplit(loaded: LoadedConfig, split: DatasetSplit, source: DatasetSource, loaders: readonly DatasetLoader[]): Promise<Dataset> {
  const where = describeKey(loaded, ['data', split]);
  const loader = loaders.find((candidate) => candidate.canLoad(source));
  if (loader === undefined) {
    throw new ConfigError(
      `${where}: no dataset loader reads these files (formats: ${loaders.map((l) => l.format).join(', ')}). Save the split as .npy files, or add a plugin that reads its format.`,
      { file: loaded.file },
    );
  }
  try {
    return await loader.load(source);
  } catch (error) {
    throw new DatasetError(`${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error, file: loaded.file });
  }
}

/** `data.val.x (line 4 of /path/autoglm.yaml)` */
function describeKey(loaded: LoadedConfig, keyPath: KeyPath): string {
  const position = loaded.locate(keyPath);
  return `${formatKeyPath(keyPath)} (${position === undefined ? loaded.file : `line ${position.line} of ${loaded.file}`})`;
}
