export { analyzeDependencies, type DependencyAnalysis, type DependencyGroup, type GroupMember } from './analyzeDependencies.js';
export { computeImportance, IMPORTANCE_CRITERIA, type ImportanceCriterion, type ParameterGradients } from './computeImportance.js';
export { planKeptCounts, prunableGroups, type PruningPlan, type PruningRatios, selectKeptUnits, validateRatios } from './planPruning.js';
export { applyPruningPlan } from './applyPruningPlan.js';
export {
  type GroupPruningReport,
  type ModelSize,
  StructuredPruner,
  type StructuredPruningOptions,
  type StructuredPruningReport,
  type StructuredPruningResult,
} from './StructuredPruner.js';
