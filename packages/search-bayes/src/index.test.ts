import 'reflect-metadata';
import { PluginRegistry, type Sampler, StrategyToken, validatePluginOptions } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { createSampler } from './BayesStrategy.js';
import { createStudy } from './createStudy.js';
import { GPSampler } from './gp/GPSampler.js';
import plugin from './index.js';
import { TPESampler } from './samplers/TPESampler.js';
import { searchBayesOptionsSchema } from './searchBayesOptions.js';

describe('search-bayes plugin', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('../package.json', import.meta.url),
    validConfig: { sampler: 'tpe', trials: 20, seed: 0, multivariate: true },
  });

  it('should provide a strategy whose studies are sampled as configured and reproducible per seed', async () => {
    const runs: unknown[][] = [];
    for (let run = 0; run < 2; run++) {
      const registry = new PluginRegistry(container.createChildContainer());
      registry.add(plugin, { sampler: 'tpe', trials: 15, seed: 7, startupTrials: 5 });
      const strategy = registry.resolve(plugin, StrategyToken);
      expect(strategy.trials).toBe(15);
      const study = strategy.createStudy({ directions: ['maximize'] });
      await study.optimize((trial) => -((trial.suggestFloat('ratio', 0, 0.7, { step: 0.05 }) - 0.3) ** 2), { trials: strategy.trials });
      runs.push(study.trials.map((trial) => trial.params.ratio));
    }
    expect(runs[0]).toEqual(runs[1]);
  });

  it('should build every sampler it names', () => {
    for (const sampler of ['random', 'tpe', 'motpe', 'nsga2', 'gp'] as const) {
      const registry = new PluginRegistry(container.createChildContainer());
      registry.add(plugin, { sampler, trials: 5, pruner: 'successiveHalving' });
      const directions = sampler === 'gp' ? (['minimize'] as const) : (['minimize', 'minimize'] as const);
      const study = registry.resolve(plugin, StrategyToken).createStudy({ directions: [...directions] });
      const trial = study.ask({ x: { kind: 'float', low: 0, high: 1 } });
      const x = trial.params.x as number;
      study.tell(trial, directions.length === 1 ? x : [x, 1 - x]);
      expect(study.trials[0]?.state, sampler).toBe('complete');
    }
  });

  it('should reject options of another sampler and bad values with the key at fault', () => {
    expect(() => validatePluginOptions(plugin, { sampler: 'tpe', trials: 10, populationSize: 20 })).toThrow(/populationSize applies to sampler nsga2, not tpe/);
    expect(searchBayesOptionsSchema.safeParse({ sampler: 'cmaes', trials: 10 }).success).toBe(false);
    expect(searchBayesOptionsSchema.safeParse({ sampler: 'tpe', trials: 0 }).success).toBe(false);
    expect(searchBayesOptionsSchema.safeParse({ sampler: 'nsga2', trials: 10, populationSize: 20, crossover: 'sbx' }).success).toBe(true);
  });

  it('should hand the samplers their model options (the same proposals as the sampler built directly)', async () => {
    const proposals = async (sampler: Sampler): Promise<number[]> => {
      const study = createStudy({ directions: ['minimize'], sampler });
      await study.optimize((trial) => (trial.suggestFloat('x', -2, 2) - 0.5) ** 2 + trial.suggestFloat('y', 0, 1), { trials: 14 });
      return study.trials.flatMap((trial) => [trial.params.x as number, trial.params.y as number]);
    };
    const cases: [Record<string, unknown>, Sampler, Sampler][] = [
      [{ sampler: 'tpe', startupDesign: 'random', goodWeights: 'recency' }, new TPESampler({ seed: 3, startupDesign: 'random', goodWeights: 'recency' }), new TPESampler({ seed: 3 })],
      [{ sampler: 'gp', startupDesign: 'random', priorMean: 'average', lengthscalePrior: 'optuna' }, new GPSampler({ seed: 3, startupDesign: 'random', priorMean: 'average', lengthscalePrior: 'optuna' }), new GPSampler({ seed: 3 })],
    ];
    for (const [options, direct, defaults] of cases) {
      const viaPlugin = await proposals(createSampler(searchBayesOptionsSchema.parse({ ...options, trials: 14, seed: 3 })));
      expect(viaPlugin, JSON.stringify(options)).toEqual(await proposals(direct));
      // And the options change something: the defaults propose otherwise.
      expect(viaPlugin, JSON.stringify(options)).not.toEqual(await proposals(defaults));
    }
  });

  it('should refuse a start-up design the sampler does not have', () => {
    expect(() => validatePluginOptions(plugin, { sampler: 'tpe', trials: 10, startupDesign: 'latinHypercube' })).toThrow(/startupDesign latinHypercube is not one of sampler tpe's: use halton or random/);
    expect(() => validatePluginOptions(plugin, { sampler: 'gp', trials: 10, startupDesign: 'halton' })).toThrow(/use latinHypercube or random/);
    expect(() => validatePluginOptions(plugin, { sampler: 'gp', trials: 10, goodWeights: 'recency' })).toThrow(/goodWeights applies to sampler tpe, not gp/);
  });
});
