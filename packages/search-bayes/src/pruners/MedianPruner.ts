import { ConfigError, type FrozenTrial, type Study, type TrialPruner } from '@open-autoglm/core';

export interface MedianPrunerOptions {
  /** No pruning until this many trials are complete [5]. */
  readonly startupTrials?: number;
  /** No pruning before this step of a trial [0]. */
  readonly warmupSteps?: number;
  /** Prune only every `intervalSteps` steps after the warm-up [1]. */
  readonly intervalSteps?: number;
  /** Need at least this many complete trials that reported the step [1]. */
  readonly minTrials?: number;
}

/**
 * Stops a trial whose best intermediate value so far is worse than the median of the complete
 * trials' values at the same step (Optuna's `MedianPruner`, a 50th-percentile pruner).
 */
export class MedianPruner implements TrialPruner {
  private readonly startupTrials: number;
  private readonly warmupSteps: number;
  private readonly intervalSteps: number;
  private readonly minTrials: number;

  constructor(options: MedianPrunerOptions = {}) {
    this.startupTrials = checkCount('startupTrials', options.startupTrials ?? 5, 0);
    this.warmupSteps = checkCount('warmupSteps', options.warmupSteps ?? 0, 0);
    this.intervalSteps = checkCount('intervalSteps', options.intervalSteps ?? 1, 1);
    this.minTrials = checkCount('minTrials', options.minTrials ?? 1, 1);
  }

  prune(study: Study, trial: FrozenTrial): boolean {
    const complete = study.getTrials({ states: ['complete'] });
    if (complete.length === 0 || complete.length < this.startupTrials) return false;
    const steps = [...trial.intermediateValues.keys()];
    if (steps.length === 0) return false;
    const step = Math.max(...steps);
    if (step < this.warmupSteps) return false;
    if (!isFirstInIntervalStep(step, steps, this.warmupSteps, this.intervalSteps)) return false;

    const maximize = study.directions[0] === 'maximize';
    const own = [...trial.intermediateValues.values()].filter((value) => !Number.isNaN(value));
    if (own.length === 0) return true; // only NaN so far: a diverged trial
    const best = maximize ? Math.max(...own) : Math.min(...own);
    const others = complete.flatMap((other) => {
      const value = other.intermediateValues.get(step);
      return value === undefined ? [] : [value];
    });
    if (others.length < this.minTrials) return false;
    const median = percentile(others, 50);
    if (Number.isNaN(median)) return false;
    return maximize ? best < median : best > median;
  }
}

/** True when no earlier report of this trial fell in the current pruning interval (Optuna's rule). */
function isFirstInIntervalStep(step: number, steps: readonly number[], warmupSteps: number, intervalSteps: number): boolean {
  const nearestLowerPruningStep = Math.floor((step - warmupSteps) / intervalSteps) * intervalSteps + warmupSteps;
  const secondLastStep = steps.reduce((previous, s) => (s > previous && s !== step ? s : previous), -1);
  return secondLastStep < nearestLowerPruningStep;
}

/** numpy's `nanpercentile` with linear interpolation. */
export function percentile(values: readonly number[], q: number): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const position = ((sorted.length - 1) * q) / 100;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const a = sorted[lower] ?? Number.NaN;
  const b = sorted[upper] ?? Number.NaN;
  return a + (b - a) * (position - lower);
}

export function checkCount(name: string, value: number, minimum: number): number {
  if (!Number.isInteger(value) || value < minimum) throw new ConfigError(`Pruner option ${name} must be an integer >= ${minimum}, not ${value}.`);
  return value;
}
