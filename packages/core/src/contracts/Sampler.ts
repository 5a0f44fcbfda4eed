import type { FrozenTrial, TrialState } from './FrozenTrial.js';
import type { ParameterDistribution, ParameterValue, TrialParams } from './SearchSpace.js';
import type { Study } from './Study.js';

/** Parameters a sampler draws jointly, by name. */
export type RelativeSearchSpace = Readonly<Record<string, ParameterDistribution>>;

/**
 * Proposes parameter values (Optuna's `BaseSampler`). When a trial starts, the study calls
 * `inferRelativeSearchSpace` and then `sampleRelative` once, to draw the parameters the sampler
 * models jointly (multivariate TPE, GP, NSGA-II); each later `trial.suggest*` of a parameter
 * drawn that way returns the relative value, and any other parameter goes to
 * `sampleIndependent`. `afterTrial` sees every trial when it finishes, before its state is stored.
 *
 * Samplers are seeded and deterministic: the same seed and the same history give the same values.
 * Values are external values (a choice itself for categorical parameters), always inside their
 * distribution (in range, on the step grid).
 */
export interface Sampler {
  /** The parameters to draw jointly for `trial`; `{}` when the sampler only samples independently. */
  inferRelativeSearchSpace(study: Study, trial: FrozenTrial): RelativeSearchSpace;
  /** Values for (some or all of) `searchSpace`; names left out are sampled independently. */
  sampleRelative(study: Study, trial: FrozenTrial, searchSpace: RelativeSearchSpace): TrialParams;
  /** A value for one parameter that was not drawn relatively. */
  sampleIndependent(study: Study, trial: FrozenTrial, paramName: string, distribution: ParameterDistribution): ParameterValue;
  /** Called when `trial` starts, before `inferRelativeSearchSpace`. */
  beforeTrial?(study: Study, trial: FrozenTrial): void;
  /**
   * Called when `trial` finishes with `state` (`complete`, `pruned` or `failed`) and `values`
   * (set for `complete`), before the storage records the state.
   */
  afterTrial?(study: Study, trial: FrozenTrial, state: TrialState, values: readonly number[] | undefined): void;
}
