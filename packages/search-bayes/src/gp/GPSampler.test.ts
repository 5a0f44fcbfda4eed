import { NopPruner, RandomSampler, UnsupportedOperationError } from '@open-autoglm/core';
import type { Sampler, Study } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { createSampler } from '../BayesStrategy.js';
import { searchBayesOptionsSchema } from '../searchBayesOptions.js';
import { GPSampler } from './GPSampler.js';
import { createStudy } from '../createStudy.js';

function branin(x1: number, x2: number): number {
  const b = 5.1 / (4 * Math.PI * Math.PI);
  return (x2 - b * x1 * x1 + (5 / Math.PI) * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x1) + 10;
}

async function minimizeBranin(study: Study, trials: number): Promise<number> {
  await study.optimize((trial) => branin(trial.suggestFloat('x1', -5, 10), trial.suggestFloat('x2', 0, 15)), { trials });
  return study.bestTrial.values?.[0] as number;
}

describe('GPSampler', () => {
  it.each(['worst', 'average'] as const)('should beat random search on Branin at 30 trials for every seed tried (prior mean %s)', async (priorMean) => {
    for (const seed of [1, 2, 3]) {
      const gp = await minimizeBranin(createStudy({ directions: ['minimize'], sampler: new GPSampler({ seed, priorMean }), pruner: new NopPruner() }), 30);
      const random = await minimizeBranin(createStudy({ directions: ['minimize'], sampler: new RandomSampler({ seed }), pruner: new NopPruner() }), 30);
      expect(gp).toBeLessThan(random);
      // The global minimum is 0.397887.
      expect(gp).toBeLessThan(0.45);
    }
  });

  it('should be deterministic for a seed and keep every value inside its distribution', async () => {
    const run = async (): Promise<unknown[]> => {
      const study = createStudy({ directions: ['maximize'], sampler: new GPSampler({ seed: 5, startupTrials: 4 }), pruner: new NopPruner() });
      await study.optimize(
        (trial) => {
          const lr = trial.suggestFloat('lr', 1e-4, 1e-1, { log: true });
          const layers = trial.suggestInt('layers', 1, 6);
          const ratio = trial.suggestFloat('ratio', 0, 0.5, { step: 0.05 });
          const act = trial.suggestCategorical('act', ['relu', 'gelu', 'tanh']);
          return -((Math.log10(lr) + 2.5) ** 2) - (layers - 4) ** 2 / 4 - (ratio - 0.2) ** 2 + (act === 'gelu' ? 0.5 : 0);
        },
        { trials: 12 },
      );
      return study.trials.map((t) => t.params);
    };
    const first = await run();
    expect(await run()).toEqual(first);
    for (const params of first as Record<string, number | string>[]) {
      expect(params.lr).toBeGreaterThanOrEqual(1e-4);
      expect(params.lr).toBeLessThanOrEqual(1e-1);
      expect(Number.isInteger(params.layers)).toBe(true);
      expect(Math.abs((params.ratio as number) / 0.05 - Math.round((params.ratio as number) / 0.05))).toBeLessThan(1e-9);
      expect(['relu', 'gelu', 'tanh']).toContain(params.act);
    }
  });

  it('should draw the latinHypercube start-up trials one per stratum of every parameter', async () => {
    const study = createStudy({ directions: ['minimize'], sampler: new GPSampler({ seed: 9, startupTrials: 8, startupDesign: 'latinHypercube' }), pruner: new NopPruner() });
    await study.optimize(
      (trial) => {
        const x = trial.suggestFloat('x', -4, 4);
        const lr = trial.suggestFloat('lr', 1e-4, 1, { log: true });
        const n = trial.suggestInt('n', 0, 7);
        const kind = trial.suggestCategorical('kind', ['a', 'b', 'c', 'd']);
        return x * x + lr + n + (kind === 'a' ? 0 : 1);
      },
      { trials: 8 },
    );
    const params = study.trials.map((t) => t.params as { x: number; lr: number; n: number; kind: string });
    const strata = (values: number[]): number[] => values.map((v) => Math.floor(v * 8)).sort((a, b) => a - b);
    const everyStratum = [0, 1, 2, 3, 4, 5, 6, 7];
    expect(strata(params.map((p) => (p.x + 4) / 8))).toEqual(everyStratum);
    expect(strata(params.map((p) => Math.log10(p.lr) / 4 + 1))).toEqual(everyStratum);
    // Eight grid points, eight strata: each integer once; four choices: each twice.
    expect(params.map((p) => p.n).sort((a, b) => a - b)).toEqual(everyStratum);
    expect(params.map((p) => p.kind).sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd']);
  });

  it('should leave the start-up trials to an independentSampler it is given', async () => {
    const startup = async (sampler: Sampler): Promise<unknown[]> => {
      const study = createStudy({ directions: ['minimize'], sampler, pruner: new NopPruner() });
      await minimizeBranin(study, 4);
      return study.trials.map((t) => t.params);
    };
    const random = await startup(new RandomSampler({ seed: 6 }));
    expect(await startup(new GPSampler({ seed: 1, startupTrials: 4, independentSampler: new RandomSampler({ seed: 6 }) }))).toEqual(random);
    expect(await startup(new GPSampler({ seed: 6, startupTrials: 4 }))).not.toEqual(random);
  });

  it('should search wide integer grids (line search) and categorical choices (exhaustive)', async () => {
    const study = createStudy({ directions: ['minimize'], sampler: new GPSampler({ seed: 4 }), pruner: new NopPruner() });
    await study.optimize(
      (trial) => {
        const n = trial.suggestInt('n', 0, 100);
        const x = trial.suggestFloat('x', -1, 1);
        const kind = trial.suggestCategorical('kind', ['a', 'b', null, 'd']);
        return ((n - 37) / 10) ** 2 + x * x + (kind === null ? 0 : 1);
      },
      { trials: 30 },
    );
    const best = study.bestTrial.params;
    expect(Math.abs((best.n as number) - 37)).toBeLessThanOrEqual(3);
    expect(best.kind).toBeNull();
  });

  it('should find the constrained optimum and stay away from the infeasible one', async () => {
    // Minimize x^2 + y^2 subject to x + y >= 1: the optimum is (0.5, 0.5) with value 0.5.
    const study = createStudy({
      directions: ['minimize'],
      sampler: new GPSampler({ seed: 2 }),
      pruner: new NopPruner(),
      constraintsFunction: (trial) => [1 - (trial.params.x as number) - (trial.params.y as number)],
    });
    await study.optimize((trial) => trial.suggestFloat('x', -2, 2) ** 2 + trial.suggestFloat('y', -2, 2) ** 2, { trials: 30 });
    expect(study.bestTrial.values?.[0]).toBeLessThan(0.52);
    // The unconstrained optimum (0, 0) is infeasible: the modelled trials stay near the boundary
    // x + y = 1 (objective >= 0.5 there) instead of heading for it.
    for (const trial of study.trials.slice(12)) expect(trial.values?.[0]).toBeGreaterThan(0.45);
  });

  it('should refuse a study with several objectives at its first trial', async () => {
    const study = createStudy({ directions: ['minimize', 'minimize'], sampler: new GPSampler({ seed: 1 }), pruner: new NopPruner() });
    await expect(study.optimize((trial) => [trial.suggestFloat('x', 0, 1), 1], { trials: 1 })).rejects.toThrow(UnsupportedOperationError);
  });

  it('should be what the plugin creates for sampler "gp", with the GP options passed on', async () => {
    expect(createSampler(searchBayesOptionsSchema.parse({ sampler: 'gp', trials: 20, seed: 3, startupTrials: 5 }))).toBeInstanceOf(GPSampler);
    const proposals = async (sampler: Sampler): Promise<unknown[]> => {
      const study = createStudy({ directions: ['minimize'], sampler, pruner: new NopPruner() });
      await minimizeBranin(study, 5);
      return study.trials.map((t) => t.params);
    };
    const options = { seed: 3, startupTrials: 3, lengthscalePrior: 'optuna', priorMean: 'average', startupDesign: 'random' } as const;
    const fromPlugin = await proposals(createSampler(searchBayesOptionsSchema.parse({ sampler: 'gp', trials: 5, ...options })));
    expect(fromPlugin).toEqual(await proposals(new GPSampler(options)));
    expect(fromPlugin).not.toEqual(await proposals(new GPSampler({ seed: 3, startupTrials: 3 })));
    expect(() => searchBayesOptionsSchema.parse({ sampler: 'tpe', trials: 5, priorMean: 'worst' })).toThrow(/priorMean applies to sampler gp, not tpe/);
  });
});
