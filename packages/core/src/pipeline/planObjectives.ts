import type { Objective } from '../config/configSchema.js';
import type { StudyDirection } from '../contracts/Study.js';

/** The metrics of one model as the pipeline measures them. */
export type ModelMetrics = Readonly<Record<string, number>>;

/** One bound a trial must meet, from an objective's `maxDrop` or `limit`. */
export interface ObjectiveConstraint {
  readonly metric: string;
  /** `accuracy drop <= 0.01` */
  readonly description: string;
  /** <= 0 when met (Optuna's convention), in the metric's units. */
  violation(metrics: ModelMetrics): number;
}

/** How the config's `objectives:` become a study: directions, values and constraints. */
export interface ObjectivePlan {
  readonly metrics: readonly string[];
  readonly directions: readonly StudyDirection[];
  readonly constraints: readonly ObjectiveConstraint[];
  /**
   * The metric `best.onnx` is chosen by among the feasible Pareto-optimal trials: the first
   * objective without a bound (what is left to optimize once the bounds hold), else the first.
   */
  readonly primaryMetric: string;
  /** True when every objective carries a bound: a feasible trial then meets every goal. */
  readonly everyObjectiveBounded: boolean;
  values(metrics: ModelMetrics): number[];
}

/** Plans the study of `objectives` for a model whose baseline metrics are `baseline`. */
export function planObjectives(objectives: readonly Objective[], baseline: ModelMetrics): ObjectivePlan {
  const constraints: ObjectiveConstraint[] = [];
  for (const objective of objectives) {
    const { metric, maximize } = objective;
    if (objective.maxDrop !== undefined) {
      const maxDrop = objective.maxDrop;
      const reference = baseline[metric] ?? Number.NaN;
      constraints.push({
        metric,
        description: `${metric} drop <= ${maxDrop} (baseline ${reference})`,
        violation: (metrics) => ignoreRounding(reference - (metrics[metric] ?? Number.NEGATIVE_INFINITY) - maxDrop),
      });
    }
    if (objective.limit !== undefined) {
      const limit = objective.limit;
      constraints.push({
        metric,
        description: `${metric} ${maximize ? '>=' : '<='} ${limit}`,
        violation: (metrics) => {
          const value = metrics[metric];
          if (value === undefined) return Number.POSITIVE_INFINITY;
          return ignoreRounding(maximize ? limit - value : value - limit);
        },
      });
    }
  }
  const unbounded = objectives.find((o) => o.maxDrop === undefined && o.limit === undefined);
  const metrics = objectives.map((o) => o.metric);
  return {
    metrics,
    directions: objectives.map((o) => (o.maximize ? 'maximize' : 'minimize')),
    constraints,
    primaryMetric: (unbounded ?? objectives[0])?.metric ?? 'accuracy',
    everyObjectiveBounded: unbounded === undefined,
    values: (measured) => metrics.map((metric) => measured[metric] ?? Number.NaN),
  };
}

/**
 * A bound met exactly must count as met: 0.9295 - 0.9195 - 0.01 is 1e-17 in binary, and a drop of
 * exactly 1 point (20 of 2,000 samples) is within `maxDrop: 0.01`. Metrics are far coarser than
 * this tolerance (an accuracy step is 1 / samples).
 */
function ignoreRounding(violation: number): number {
  return Math.abs(violation) <= 1e-9 ? 0 : violation;
}

/** The constraints a trial breaks, in words (`latency <= 2 (measured 2.4)`), for the study and the report. */
export function describeViolations(plan: ObjectivePlan, metrics: ModelMetrics): string[] {
  return plan.constraints
    .filter((constraint) => constraint.violation(metrics) > 0)
    .map((constraint) => `${constraint.description}: measured ${formatMetric(metrics[constraint.metric])}`);
}

function formatMetric(value: number | undefined): string {
  return value === undefined ? 'nothing' : Number.isInteger(value) ? String(value) : value.toPrecision(4);
}
