import { isValueInDistribution, NopPruner, RandomSampler, type Sampler, type Study, type TrialParams } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
// The benchmark's own problem definitions, so tests and `npm run bench:search` score the same functions.
import { branin, hartmann6 } from '../../../../bench/problems/singleObjectiveProblems.js';
import { TPESampler, defaultGamma, defaultWeights, improvementWeights, splitObservations } from './TPESampler.js';
import { createStudy } from '../createStudy.js';

async function minimizeBranin(sampler: Sampler, trials: number): Promise<Study> {
  const study = createStudy({ directions: ['minimize'], sampler, pruner: new NopPruner() });
  await study.optimize((trial) => branin.evaluate([trial.suggestFloat('x', -5, 10), trial.suggestFloat('y', 0, 15)]), { trials });
  return study;
}

async function minimizeHartmann6(sampler: Sampler, trials: number): Promise<number> {
  const study = createStudy({ directions: ['minimize'], sampler, pruner: new NopPruner() });
  await study.optimize((trial) => hartmann6.evaluate([0, 1, 2, 3, 4, 5].map((i) => trial.suggestFloat(`x${i}`, 0, 1))), { trials });
  return study.bestTrial.values?.[0] ?? Infinity;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

describe('defaultGamma and defaultWeights', () => {
  it('should follow Optuna: ceil(10%) capped at 25; the 25 newest weigh 1, older ones ramp from 1/n', () => {
    expect([1, 10, 11, 100, 251, 1000].map(defaultGamma)).toEqual([1, 1, 2, 10, 25, 25]);
    expect([...defaultWeights(3)]).toEqual([1, 1, 1]);
    const weights = defaultWeights(30);
    expect([...weights.slice(0, 5)].map((w) => Number(w.toFixed(12)))).toEqual([1 / 30, 0.275, 0.516666666667, 0.758333333333, 1].map((w) => Number(w.toFixed(12))));
    expect([...weights.slice(5)]).toEqual(new Array(25).fill(1));
  });
});

describe('splitObservations', () => {
  it('should put complete trials by value first, then pruned ones by depth, like Optuna', () => {
    const scores = [
      { step: -Infinity, losses: [3] },
      { step: -5, losses: [0.1] }, // pruned at step 5
      { step: -Infinity, losses: [1] },
      { step: -9, losses: [2] }, // pruned at step 9: deeper, so ahead of the step-5 one
    ];
    expect(splitObservations({ values: {}, scores, violations: undefined }, 3)).toEqual([[0, 2, 3], [1]]);
  });

  it('should fill the good group with feasible trials first (c-TPE)', () => {
    const scores = [0.1, 0.2, 0.3, 0.4, 0.5].map((loss) => ({ step: -Infinity, losses: [loss] }));
    // Trials 0 and 1 are the best but infeasible.
    const violations = Float64Array.of(2, 0.5, 0, 0, 0);
    expect(splitObservations({ values: {}, scores, violations }, 2)).toEqual([
      [2, 3],
      [0, 1, 4],
    ]);
    // Fewer feasible trials than the group: least violation next.
    expect(splitObservations({ values: {}, scores, violations: Float64Array.of(2, 0.5, 0, 3, 4) }, 2)).toEqual([
      [1, 2],
      [0, 3, 4],
    ]);
  });

  it('should split several objectives by non-domination rank, then hypervolume contribution', () => {
    const scores = [
      [1, 4],
      [2, 2],
      [4, 1],
      [3, 3], // rank 1
      [2.5, 3.5], // rank 1
      [5, 5], // rank 2
    ].map((losses) => ({ step: -Infinity, losses }));
    const [below, above] = splitObservations({ values: {}, scores, violations: undefined }, 4);
    expect(below.slice(0, 3)).toEqual([0, 1, 2]);
    expect(below).toHaveLength(4);
    expect(above).toContain(5);
  });
});

describe('improvementWeights', () => {
  const complete = (loss: number) => ({ step: -Infinity, losses: [loss] });

  it("should weigh each good observation by its improvement over the rest's best value", () => {
    const scores = [complete(3), complete(1), complete(7), complete(2), complete(5)];
    expect([...(improvementWeights({ values: {}, scores, violations: undefined }, [1, 3], [0, 2, 4]) ?? [])]).toEqual([2, 1]);
    // A tie with the threshold keeps a tiny positive weight.
    expect([...(improvementWeights({ values: {}, scores, violations: undefined }, [0], [2, 4, 0]) ?? [])]).toEqual([1e-12]);
  });

  it('should decline pruned good trials, constraints, and a rest without a finite value', () => {
    const scores = [complete(1), { step: -3, losses: [0.5] }, complete(Infinity)];
    expect(improvementWeights({ values: {}, scores, violations: undefined }, [0, 1], [2])).toBeUndefined();
    expect(improvementWeights({ values: {}, scores, violations: undefined }, [0], [2])).toBeUndefined();
    expect(improvementWeights({ values: {}, scores: [complete(1), complete(2)], violations: Float64Array.of(0, 0) }, [0], [1])).toBeUndefined();
  });
});

describe('TPESampler', () => {
  it('should be deterministic for a seed and differ between seeds', async () => {
    const params = async (seed: number) => (await minimizeBranin(new TPESampler({ seed }), 25)).trials.map((trial) => trial.params);
    expect(await params(11)).toEqual(await params(11));
    expect(await params(11)).not.toEqual(await params(12));
  });

  it('should beat random search on Branin and Hartmann-6 (100 trials, seeded)', async () => {
    const seeds = [1, 2, 3, 4, 5];
    const tpeBranin: number[] = [];
    const randomBranin: number[] = [];
    for (const seed of seeds) {
      tpeBranin.push((await minimizeBranin(new TPESampler({ seed }), 100)).bestTrial.values?.[0] ?? Infinity);
      randomBranin.push((await minimizeBranin(new RandomSampler({ seed }), 100)).bestTrial.values?.[0] ?? Infinity);
    }
    expect(median(tpeBranin)).toBeLessThan(median(randomBranin));
    expect(median(tpeBranin)).toBeLessThan(0.6); // the optimum is 0.397887
    const tpeHartmann: number[] = [];
    const randomHartmann: number[] = [];
    for (const seed of [1, 2, 3]) {
      tpeHartmann.push(await minimizeHartmann6(new TPESampler({ seed }), 100));
      randomHartmann.push(await minimizeHartmann6(new RandomSampler({ seed }), 100));
    }
    expect(median(tpeHartmann)).toBeLessThan(median(randomHartmann));
    expect(median(tpeHartmann)).toBeLessThan(-2.5); // the optimum is -3.32237
  });

  it("should spread the start-up trials evenly with startupDesign 'halton' and keep to every distribution kind", async () => {
    const space = {
      x: { kind: 'float', low: 0, high: 1 },
      lr: { kind: 'float', low: 1e-5, high: 1, log: true },
      width: { kind: 'int', low: 8, high: 128, step: 8 },
      method: { kind: 'categorical', choices: ['minmax', 'percentile', null] },
    } as const;
    const startup = async (seed: number): Promise<TrialParams[]> => {
      const study = createStudy({ directions: ['minimize'], sampler: new TPESampler({ seed, startupTrials: 8, startupDesign: 'halton' }), pruner: new NopPruner() });
      await study.optimize((trial) => {
        for (const [name, distribution] of Object.entries(space)) trial.suggest(name, distribution);
        return 0;
      }, { trials: 8 });
      return study.trials.map((trial) => trial.params);
    };
    const params = await startup(5);
    for (const trial of params) for (const [name, distribution] of Object.entries(space)) expect(isValueInDistribution(distribution, trial[name]!), name).toBe(true);
    // The first parameter takes the base-2 dimension: 8 consecutive points fill the 8 eighths of [0, 1) once each.
    expect(params.map((trial) => Math.floor((trial.x as number) * 8)).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await startup(5)).toEqual(params);
    expect(await startup(6)).not.toEqual(params);
  });

  it('should model parameters jointly when multivariate', async () => {
    const sampler = new TPESampler({ seed: 3, multivariate: true });
    const study = await minimizeBranin(sampler, 60);
    const last = study.trials.at(-1);
    expect(sampler.inferRelativeSearchSpace(study)).toEqual({ x: { kind: 'float', low: -5, high: 10 }, y: { kind: 'float', low: 0, high: 15 } });
    expect(last?.params).toBeDefined();
    expect(study.bestTrial.values?.[0]).toBeLessThan(1.5);
  });

  it('should keep to the distributions and learn the best category (null, Optuna\'s None), log range and grid', async () => {
    const study = createStudy({ directions: ['minimize'], sampler: new TPESampler({ seed: 4 }), pruner: new NopPruner() });
    const space = {
      method: { kind: 'categorical', choices: ['minmax', 'percentile', null] },
      lr: { kind: 'float', low: 1e-5, high: 1, log: true },
      ratio: { kind: 'float', low: 0, high: 0.7, step: 0.05 },
      width: { kind: 'int', low: 8, high: 128, step: 8 },
    } as const;
    await study.optimize(
      (trial) => {
        const method = trial.suggest('method', space.method);
        const lr = trial.suggest('lr', space.lr) as number;
        const ratio = trial.suggest('ratio', space.ratio) as number;
        const width = trial.suggest('width', space.width) as number;
        return (method === null ? 0 : 1) + Math.abs(Math.log10(lr) + 3) + Math.abs(ratio - 0.35) + Math.abs(width - 64) / 64;
      },
      { trials: 80 },
    );
    for (const trial of study.trials) {
      for (const [name, distribution] of Object.entries(space)) expect(isValueInDistribution(distribution, trial.params[name]!), name).toBe(true);
    }
    const late = study.trials.slice(-30);
    expect(late.filter((trial) => trial.params.method === null).length).toBeGreaterThan(15);
    expect(study.bestTrial.values?.[0]).toBeLessThan(0.8);
  });

  it('should spread parallel asks with the constant liar', async () => {
    const spread = async (constantLiar: boolean, multivariate: boolean): Promise<number> => {
      const study = await minimizeBranin(new TPESampler({ seed: 8, constantLiar, multivariate }), 20);
      // Eight workers each ask for a trial and suggest its parameters, none of them finishing yet.
      const points = Array.from({ length: 8 }, () => {
        const trial = study.ask();
        return [trial.suggestFloat('x', -5, 10), trial.suggestFloat('y', 0, 15)] as const;
      });
      let total = 0;
      for (let i = 0; i < points.length; i++) for (let j = i + 1; j < points.length; j++) total += Math.hypot(points[i]![0] - points[j]![0], points[i]![1] - points[j]![1]);
      return total;
    };
    for (const multivariate of [true, false]) expect(await spread(true, multivariate), `multivariate: ${multivariate}`).toBeGreaterThan(await spread(false, multivariate));
  });

  it('should prefer feasible regions when trials carry constraints', async () => {
    // Minimize x + y subject to x >= 5 (constraint 5 - x <= 0); random search keeps 10 of 20 trials feasible on average.
    const feasibleLate: number[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const study = createStudy({
        directions: ['minimize'],
        sampler: new TPESampler({ seed }),
        pruner: new NopPruner(),
        constraintsFunction: (trial) => [5 - (trial.params.x as number)],
      });
      await study.optimize((trial) => trial.suggestFloat('x', 0, 10) + trial.suggestFloat('y', 0, 10), { trials: 60 });
      feasibleLate.push(study.trials.slice(-20).filter((trial) => (trial.params.x as number) >= 5).length);
      expect(study.bestTrial.params.x).toBeGreaterThanOrEqual(5);
    }
    expect(feasibleLate.reduce((sum, count) => sum + count, 0) / feasibleLate.length).toBeGreaterThan(12);
  });
});
