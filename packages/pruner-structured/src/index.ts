import { createRequire } from 'node:module';
import { CommandToken, definePlugin, PassToken, registerFactory } from '@open-autoglm/core';
import { pruneCommand } from './pruneCommand.js';
import { prunerOptionsSchema } from './prunerOptions.js';
import { StructuredPruningPass } from './StructuredPruningPass.js';

// package.json sits one level above both src/ and dist/.
const manifest = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export { analyzeDependencies, type ConcatenatedChannels, type DependencyAnalysis, type DependencyGroup, type GroupMember } from './analyzeDependencies.js';
export { computeImportance, IMPORTANCE_CRITERIA, type ImportanceCriterion, type ParameterGradients } from './computeImportance.js';
export { canShrink, planKeptCounts, prunableGroups, type PruningPlan, type PruningRatios, selectKeptUnits, validateRatios } from './planPruning.js';
export { applyPruningPlan } from './applyPruningPlan.js';
export {
  type GroupPruningReport,
  type ModelSize,
  StructuredPruner,
  type StructuredPruningOptions,
  type StructuredPruningReport,
  type StructuredPruningResult,
} from './StructuredPruner.js';
export { applyBiasCompensation, type BiasCompensationTarget, biasCompensationTargets, measureInputMeans } from './compensateBias.js';
export { computeParameterGradients, type GradientOptions } from './computeParameterGradients.js';
export { type BatchNormRecalibrationReport, type FeedBatch, modelFeeds, recalibrateBatchNorm } from './recalibrateBatchNorm.js';
export { prunerOptionsSchema, type PrunerOptions } from './prunerOptions.js';
export {
  reconstructConsumers,
  type ReconstructedLayer,
  type ReconstructionOptions,
  type ReconstructionReport,
  type SkippedLayer,
  solveSymmetricPositiveDefinite,
} from './reconstructConsumers.js';
export { GLOBAL_RATIO, RATIO_PREFIX, StructuredPruningPass } from './StructuredPruningPass.js';
export { pruneCommand } from './pruneCommand.js';

/** The structured-pruning pass plugin, and the `autoglm prune` command. */
export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'Dependency-graph structured pruning of ONNX graphs (channels, attention heads, FFN neurons) with BatchNorm re-estimation',
  provides: [PassToken, CommandToken],
  configSchema: prunerOptionsSchema,
  register(container, options) {
    registerFactory(container, PassToken, () => new StructuredPruningPass(options));
    registerFactory(container, CommandToken, () => pruneCommand);
  },
});
