import { ConfigError, type FrozenTrial, type Study, type TrialPruner } from '@open-autoglm/core';
import { checkCount } from './MedianPruner.js';

export interface SuccessiveHalvingPrunerOptions {
  /** Steps a trial runs before the first rung; `'auto'` takes 1/100 of the longest complete trial's last step (at least 1) ['auto']. */
  readonly minResource?: number | 'auto';
  /** Only the best 1/reductionFactor of the trials at a rung are promoted [4]. */
  readonly reductionFactor?: number;
  /** Skips the first rungs: the first rung is at minResource * reductionFactor^rate [0]. */
  readonly minEarlyStoppingRate?: number;
  /** Trials needed at a rung before any is promoted [0]. */
  readonly bootstrapCount?: number;
}

/**
 * Asynchronous successive halving (Li et al. 2018, as Optuna's `SuccessiveHalvingPruner`): rung
 * k is at step minResource * reductionFactor^(minEarlyStoppingRate + k); a trial reaching a rung
 * records its value there and goes on only if it is in the top 1/reductionFactor of all values
 * recorded at that rung so far.
 */
export class SuccessiveHalvingPruner implements TrialPruner {
  private minResource: number | undefined;
  private readonly reductionFactor: number;
  private readonly minEarlyStoppingRate: number;
  private readonly bootstrapCount: number;

  constructor(options: SuccessiveHalvingPrunerOptions = {}) {
    const minResource = options.minResource ?? 'auto';
    if (minResource !== 'auto' && (!Number.isInteger(minResource) || minResource < 1)) {
      throw new ConfigError(`Pruner option minResource must be 'auto' or an integer >= 1, not ${String(minResource)}.`);
    }
    this.minResource = minResource === 'auto' ? undefined : minResource;
    this.reductionFactor = checkCount('reductionFactor', options.reductionFactor ?? 4, 2);
    this.minEarlyStoppingRate = checkCount('minEarlyStoppingRate', options.minEarlyStoppingRate ?? 0, 0);
    this.bootstrapCount = checkCount('bootstrapCount', options.bootstrapCount ?? 0, 0);
  }

  prune(study: Study, trial: FrozenTrial): boolean {
    if (trial.intermediateValues.size === 0) return false;
    const step = Math.max(...trial.intermediateValues.keys());
    const value = trial.intermediateValues.get(step) ?? Number.NaN;
    let rung = currentRung(trial);
    for (;;) {
      if (this.minResource === undefined) {
        this.minResource = estimateMinResource(study.getTrials({ states: ['complete'] }));
        if (this.minResource === undefined) return false;
      }
      const promotionStep = this.minResource * this.reductionFactor ** (this.minEarlyStoppingRate + rung);
      if (step < promotionStep) return false;
      if (Number.isNaN(value)) return true;
      const rungKey = completedRungKey(rung);
      study.storage.setTrialSystemAttr(trial.trialId, rungKey, value);
      const competing = study.getTrials().flatMap((other) => {
        const recorded = other.trialId === trial.trialId ? undefined : other.systemAttrs[rungKey];
        return typeof recorded === 'number' ? [recorded] : [];
      });
      competing.push(value);
      if (competing.length <= this.bootstrapCount) return true;
      if (!isPromotable(value, competing, this.reductionFactor, study.directions[0] === 'maximize')) return true;
      rung += 1;
    }
  }
}

/** The rung key Optuna stores in the trial's system attributes. */
export function completedRungKey(rung: number): string {
  return `completed_rung_${rung}`;
}

function currentRung(trial: FrozenTrial): number {
  let rung = 0;
  while (completedRungKey(rung) in trial.systemAttrs) rung++;
  return rung;
}

function estimateMinResource(complete: readonly FrozenTrial[]): number | undefined {
  const lastSteps = complete.flatMap((trial) => (trial.intermediateValues.size === 0 ? [] : [Math.max(...trial.intermediateValues.keys())]));
  if (lastSteps.length === 0) return undefined;
  return Math.max(Math.floor(Math.max(...lastSteps) / 100), 1);
}

function isPromotable(value: number, competing: number[], reductionFactor: number, maximize: boolean): boolean {
  let promotableIndex = Math.floor(competing.length / reductionFactor) - 1;
  if (promotableIndex === -1) promotableIndex = 0;
  competing.sort((a, b) => a - b);
  if (maximize) return value >= (competing[competing.length - 1 - promotableIndex] ?? -Infinity);
  return value <= (competing[promotableIndex] ?? Infinity);
}
