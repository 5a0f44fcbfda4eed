import 'reflect-metadata';
import { PluginRegistry, StrategyToken, validatePluginOptions } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';
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
});
