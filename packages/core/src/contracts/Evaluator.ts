import type { Dataset } from './DatasetLoader.js';
import type { Logger } from './Logger.js';
import type { ModelArtifact } from './ModelArtifact.js';
import type { TargetDescription } from './Target.js';

/** Metric values by name (`{ accuracy: 0.9295 }`). */
export type MetricValues = Readonly<Record<string, number>>;

export interface EvaluationContext {
  /** The validation split. */
  readonly dataset: Dataset;
  readonly target: TargetDescription;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** Computes quality metrics of a model on a dataset (accuracy, F1...). */
export interface Evaluator {
  /** Names of the metrics `evaluate` returns, as objectives refer to them. */
  readonly metrics: readonly string[];
  evaluate(model: ModelArtifact, context: EvaluationContext): Promise<MetricValues>;
}
