import type { Dataset, DatasetSplit } from './DatasetLoader.js';
import type { JsonValue } from './JsonValue.js';
import type { Logger } from './Logger.js';
import type { ModelArtifact } from './ModelArtifact.js';
import type { SearchSpace, TrialParams } from './SearchSpace.js';
import type { TargetDescription } from './Target.js';

/** What the pipeline hands a pass besides the model. */
export interface PassContext {
  readonly logger: Logger;
  readonly target: TargetDescription;
  /** The model the run started from (a distillation teacher, a reference for reports). */
  readonly original: ModelArtifact;
  /** The splits the config names: calibration data for quantizers, training data for distillers. */
  readonly datasets: Readonly<Partial<Record<DatasetSplit, Dataset>>>;
  /** A folder this pass may write to for the current trial. */
  readonly workDir: string;
  /** Seed of the current trial, so stochastic passes are reproducible. */
  readonly seed: number;
  readonly signal?: AbortSignal;
}

/** What a pass did, for the study and the final report (`{ prunedChannels: 48 }`). */
export type PassReport = Readonly<Record<string, JsonValue>>;

/** Size of a model in the units budgets are expressed in. */
export interface ModelCost {
  /** Multiply-accumulates per sample. */
  readonly macs: number;
  /** Parameter (weight) elements. */
  readonly params: number;
}

export interface PassResult {
  readonly model: ModelArtifact;
  readonly report: PassReport;
}

/**
 * One compression method (pruning, quantization, distillation). It answers two questions:
 * what can be searched for this model, and how to apply one choice.
 */
export interface Pass {
  /** Parameters this pass can tune for `model`; an empty list when there is nothing to choose. */
  searchSpace(model: ModelArtifact, context: PassContext): Promise<SearchSpace>;
  /** Applies the choice `params` (values for this pass's own parameter names) to `model`. */
  apply(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<PassResult>;
  /**
   * The cost of the model `apply(model, params, context)` would return, predicted without
   * building it. Layer-wise strategies call it many times per plan to keep every plan within a
   * MACs or params budget, so it should be fast (cache the model's analysis). Optional: passes
   * that do not change the cost (quantization keeps MACs) need not implement it.
   */
  predictCost?(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<ModelCost>;
}
