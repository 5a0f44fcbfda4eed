import { ConfigError, RandomSampler, type Study } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { SuccessiveHalvingPruner, completedRungKey } from './SuccessiveHalvingPruner.js';
import { createStudy } from '../createStudy.js';

function report(study: Study, values: number[]): { pruned: boolean; rungs: Record<string, unknown> } {
  const trial = study.ask();
  let pruned = false;
  values.forEach((value, i) => {
    trial.report(value, i + 1);
    pruned = trial.shouldPrune();
  });
  const rungs = Object.fromEntries(Object.entries(study.trials[trial.number]?.systemAttrs ?? {}).filter(([key]) => key.startsWith('completed_rung_')));
  study.tell(trial, pruned ? 'pruned' : (values.at(-1) as number));
  return { pruned, rungs };
}

describe('SuccessiveHalvingPruner', () => {
  it('should promote only the top 1/reductionFactor at each rung (hand-computed sequence)', () => {
    // Rungs at steps 1, 2, 4, 8 (minResource 1, factor 2). At rung 0 the k-th trial is compared
    // with the values recorded there so far, keeping the best floor(k / 2) (at least one).
    const study = createStudy({
      directions: ['minimize'],
      sampler: new RandomSampler({ seed: 0 }),
      pruner: new SuccessiveHalvingPruner({ minResource: 1, reductionFactor: 2 }),
    });
    expect(report(study, [0.5])).toEqual({ pruned: false, rungs: { [completedRungKey(0)]: 0.5 } }); // [0.5]: best 1
    expect(report(study, [0.7]).pruned).toBe(true); // [0.5, 0.7]: best 1 is 0.5
    expect(report(study, [0.3]).pruned).toBe(false); // [0.3, 0.5, 0.7]: best 1 is 0.3
    expect(report(study, [0.4]).pruned).toBe(false); // [0.3, 0.4, 0.5, 0.7]: best 2 are <= 0.4
    expect(report(study, [0.45]).pruned).toBe(true); // 5 values: best 2 are <= 0.4
    // At step 2 (rung 1) the only competitor so far is itself: promoted, and both rungs recorded.
    expect(report(study, [0.2, 0.25]).rungs).toEqual({ completed_rung_0: 0.2, completed_rung_1: 0.25 });
  });

  it('should estimate minResource from the longest complete trial when auto', () => {
    const study = createStudy({ directions: ['maximize'], sampler: new RandomSampler({ seed: 0 }), pruner: new SuccessiveHalvingPruner() });
    // No complete trial yet: no rung, no pruning.
    expect(report(study, [0.1, 0.1, 0.1]).pruned).toBe(false);
    // The longest complete trial ran 3 steps: minResource max(3 // 100, 1) = 1, rungs at 1, 4, 16.
    expect(report(study, [0.9]).pruned).toBe(false);
    expect(report(study, [0.2]).pruned).toBe(true); // [0.9, 0.2] at rung 0, factor 4: best 1 is 0.9
  });

  it('should prune until bootstrapCount trials reached a rung, and refuse bad options', () => {
    const study = createStudy({
      directions: ['minimize'],
      sampler: new RandomSampler({ seed: 0 }),
      pruner: new SuccessiveHalvingPruner({ minResource: 1, bootstrapCount: 1 }),
    });
    expect(report(study, [0.1]).pruned).toBe(true);
    expect(report(study, [0.1]).pruned).toBe(false);
    expect(() => new SuccessiveHalvingPruner({ reductionFactor: 1 })).toThrow(ConfigError);
    expect(() => new SuccessiveHalvingPruner({ minResource: 0 })).toThrow(/minResource must be 'auto' or an integer >= 1/);
  });
});
