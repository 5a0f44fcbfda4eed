import type { DatasetLoader } from '../contracts/DatasetLoader.js';
import type { Evaluator } from '../contracts/Evaluator.js';
import type { Logger } from '../contracts/Logger.js';
import type { Pass } from '../contracts/Pass.js';
import type { PluginCommand } from '../contracts/PluginCommand.js';
import type { Strategy } from '../contracts/Strategy.js';
import type { Target } from '../contracts/Target.js';
import { createToken } from './createToken.js';

/** A compression method (`passes:` in the config). */
export const PassToken = createToken<Pass>('core.pass');
/** The search strategy (`search:` in the config). */
export const StrategyToken = createToken<Strategy>('core.strategy');
/** Quality metrics of a model (accuracy...). */
export const EvaluatorToken = createToken<Evaluator>('core.evaluator');
/** Latency on the deployment target (`target:` in the config). */
export const TargetToken = createToken<Target>('core.target');
/** Readers of dataset files; several may be registered. */
export const DatasetLoaderToken = createToken<DatasetLoader>('core.datasetLoader');
/** The run's logger, bound by the CLI on the root container. */
export const LoggerToken = createToken<Logger>('core.logger');
/** A CLI subcommand a plugin contributes (`autoglm quantize`), loaded when it is invoked. */
export const CommandToken = createToken<PluginCommand>('core.command');
