import 'reflect-metadata';

export * from './errors/errors.js';

export { createToken, isToken, type Token, type TokenValue } from './plugin/createToken.js';
export { CommandToken, DatasetLoaderToken, EvaluatorToken, LoggerToken, PassToken, StrategyToken, TargetToken } from './plugin/coreTokens.js';
export { registerFactory, registerValue, resolveToken } from './plugin/tokenBindings.js';
export { definePlugin, isPlugin, type Plugin, type PluginDefinition } from './plugin/definePlugin.js';
export { PluginRegistry, type AddPluginOptions, type ProvidedValue } from './plugin/PluginRegistry.js';
export { firstPartyPluginPackages, loadPlugin, type LoadPluginOptions } from './plugin/loadPlugin.js';
export {
  discoverInstalledPlugins,
  pluginPackageKeyword,
  type DiscoveredPlugin,
  type PluginDiscovery,
  type PluginDiscoveryFailure,
} from './plugin/discoverInstalledPlugins.js';

export type { ModelArtifact } from './contracts/ModelArtifact.js';
export type { JsonValue } from './contracts/JsonValue.js';
export {
  isValueInDistribution,
  parameterDistributionSchema,
  searchSpaceSchema,
  type CategoricalChoice,
  type CategoricalDistribution,
  type FloatDistribution,
  type IntDistribution,
  type LayerFeatures,
  type ParameterDescriptor,
  type ParameterDistribution,
  type ParameterValue,
  type SearchSpace,
  type TrialParams,
} from './contracts/SearchSpace.js';
export type { ModelCost, Pass, PassContext, PassReport, PassResult } from './contracts/Pass.js';
export type {
  CommandArgumentSpec,
  CommandInvocation,
  CommandOptionSpec,
  CommandOptionValues,
  CommandResult,
  PluginCommand,
} from './contracts/PluginCommand.js';
export type { Strategy } from './contracts/Strategy.js';
export type {
  CatchableError,
  CreateStudyOptions,
  ObjectiveValues,
  SearchCostModel,
  OptimizeOptions,
  Study,
  StudyDirection,
  StudyObjective,
  SuggestNumberOptions,
  TellResult,
  Trial,
} from './contracts/Study.js';
export {
  constraintsFromSystemAttrs,
  constraintsSystemAttrKey,
  failReasonSystemAttrKey,
  finishedTrialStates,
  isFinishedTrialState,
  type FrozenTrial,
  type TrialState,
} from './contracts/FrozenTrial.js';
export type { RelativeSearchSpace, Sampler } from './contracts/Sampler.js';
export type { TrialPruner } from './contracts/TrialPruner.js';
export { TrialPruned, isTrialPruned } from './contracts/TrialPruned.js';
export type { StoredStudy, StudyStorage, TrialTemplate } from './contracts/StudyStorage.js';
export type { EvaluationContext, Evaluator, MetricValues } from './contracts/Evaluator.js';
export { targetDevices, type Device, type LatencyMeasurement, type Target, type TargetDescription } from './contracts/Target.js';
export type { Batch, Dataset, DatasetLoader, DatasetSource, DatasetSplit, TensorData, TensorElementType } from './contracts/DatasetLoader.js';
export { silentLogger, type LogFields, type Logger } from './contracts/Logger.js';

export {
  autoGlmConfigSchema,
  knownMetricDirections,
  type AutoGlmConfig,
  type AutoGlmConfigInput,
  type Objective,
  type PluginUse,
  type TargetConfig,
} from './config/configSchema.js';
export { formatKeyPath, type ConfigLocation, type KeyPath, type SourceLocator, type SourcePosition } from './config/ConfigLocation.js';
export { loadConfig, parseConfigText, validateConfig, type LoadedConfig, type ValidateConfigOptions } from './config/loadConfig.js';
export { validatePluginOptions } from './config/validatePluginOptions.js';
export { configJsonSchema, type JsonSchema } from './config/configJsonSchema.js';
export { assemblePlugins, type AssembledPlugin, type AssembledPlugins } from './plugin/assemblePlugins.js';

export { SeededRandom, type SeededRandomState } from './random/SeededRandom.js';
export { createStudy, loadStudy, type CreateSearchStudyOptions, type LoadSearchStudyOptions, type SearchStudyOptions } from './study/createStudy.js';
export { SearchStudy, type ConstraintsFunction } from './study/SearchStudy.js';
export { optimizeStudy } from './study/optimizeStudy.js';
export { ActiveTrial, fixedParamsSystemAttrKey } from './study/ActiveTrial.js';
export { InMemoryStorage } from './study/InMemoryStorage.js';
export {
  failedTrialSystemAttrKey,
  retryHistorySystemAttrKey,
  retryInterruptedTrials,
  type InterruptedTrialHandling,
} from './study/retryInterruptedTrials.js';
export { RandomSampler, sampleUniform, type RandomSamplerOptions } from './study/RandomSampler.js';
export { NopPruner } from './study/NopPruner.js';
export { dominates, nonDominationRanks, paretoFrontIndices } from './study/paretoFront.js';
export {
  checkDistribution,
  compatibleDistributions,
  isSingleDistribution,
  roundToGrid,
  sameDistribution,
  toExternalRepr,
  toInternalRepr,
} from './study/distributions.js';
export { ModelInspectorToken, type ModelInspector, type ModelStatistics } from './contracts/ModelInspector.js';
export { AutoCompressor, type AutoCompressorOptions, type CompressionEvent, type CompressionResult } from './pipeline/AutoCompressor.js';
export type { CompressionReport, ReportedTrial } from './pipeline/CompressionReport.js';
export { planObjectives, describeViolations, type ModelMetrics, type ObjectiveConstraint, type ObjectivePlan } from './pipeline/planObjectives.js';
export { renderReportHtml } from './pipeline/renderReportHtml.js';
