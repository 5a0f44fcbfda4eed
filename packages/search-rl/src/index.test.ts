import 'reflect-metadata';
import { ConfigError, InMemoryStorage, PluginRegistry, StrategyToken, validatePluginOptions, type SearchCostModel, type SearchSpace, type StudyStorage, type TrialParams } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';
import { agentCheckpointSystemAttrKey } from './LayerwiseSampler.js';
import type { LayerwiseStudy } from './LayerwiseStudy.js';
import type { RlStrategy } from './RlStrategy.js';

// Four prunable layers: MACs scale with the kept channels of a layer and of the one before it;
// accuracy falls with the square of each ratio, weighted by the layer's sensitivity.
const layerMacs = [30, 120, 90, 60];
const sensitivity = [0.8, 0.1, 0.3, 0.05];
const space: SearchSpace = layerMacs.map((macs, i) => ({
  name: `pruner.ratio.l${i}`,
  distribution: { kind: 'float', low: 0, high: 0.9, step: 0.05 },
  layer: `l${i}`,
  features: { index: i, opType: 'Conv', inChannels: 8 * i + 3, outChannels: 8 * i + 8, kernel: 9, stride: 1, macs, params: macs * 2 },
}));
const baseline = layerMacs.reduce((a, b) => a + b, 0);

function macsOf(plan: TrialParams): number {
  let total = 0;
  for (let i = 0; i < layerMacs.length; i++) {
    const kept = 1 - (plan[`pruner.ratio.l${i}`] as number);
    const keptBefore = i === 0 ? 1 : 1 - (plan[`pruner.ratio.l${i - 1}`] as number);
    total += (layerMacs[i] as number) * kept * keptBefore;
  }
  return total;
}

function accuracyOf(plan: TrialParams): number {
  return 0.9 - sensitivity.reduce((sum, s, i) => sum + s * (plan[`pruner.ratio.l${i}`] as number) ** 2, 0);
}

const costModel: SearchCostModel = { metric: 'macs', baseline, limit: 0.5 * baseline, estimate: async (plan) => macsOf(plan) };
const ddpgOptions = { agent: 'ddpg', trials: 12, warmupEpisodes: 4, seed: 5, hiddenUnits: 16, batchSize: 16, backend: 'cpu' };

function strategyOf(options: Record<string, unknown>): RlStrategy {
  const registry = new PluginRegistry(container.createChildContainer());
  registry.add(plugin, options);
  return registry.resolve(plugin, StrategyToken) as RlStrategy;
}

function openStudy(options: Record<string, unknown>, storage: StudyStorage): LayerwiseStudy {
  return strategyOf(options).createStudy({ directions: ['maximize'], storage, studyName: 'rl', loadIfExists: true, searchSpace: space, costModel });
}

async function runTrials(study: LayerwiseStudy, trials: number): Promise<void> {
  await study.optimize((trial) => accuracyOf(trial.params), { trials });
}

describe('search-rl plugin', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('../package.json', import.meta.url),
    validConfig: { agent: 'reinforce', trials: 30, seed: 0, bins: 5 },
  });

  it('should run episodes as trials that all meet the budget, reproducibly per seed', async () => {
    const runs: TrialParams[][] = [];
    for (let run = 0; run < 2; run++) {
      const study = openStudy(ddpgOptions, new InMemoryStorage());
      await runTrials(study, 12);
      expect(study.trials.every((trial) => trial.state === 'complete' && macsOf(trial.params) <= costModel.limit)).toBe(true);
      expect(study.sampler.episodes).toBe(12);
      runs.push(study.trials.map((trial) => trial.params));
    }
    expect(runs[0]).toEqual(runs[1]);
    expect(new Set(runs[0]?.map((params) => JSON.stringify(params))).size).toBeGreaterThan(6);
  });

  for (const options of [ddpgOptions, { agent: 'reinforce', trials: 12, warmupEpisodes: 3, seed: 9, hiddenUnits: 16, backend: 'cpu' }]) {
    it(`should continue a ${options.agent} search killed mid-way from the agent saved in the study`, async () => {
      const straight = openStudy(options, new InMemoryStorage());
      await runTrials(straight, 10);
      const storage = new InMemoryStorage();
      await runTrials(openStudy(options, storage), 6);
      // A new process: a new strategy, sampler and agent, the same storage.
      const resumed = openStudy(options, storage);
      await runTrials(resumed, 4);
      expect(resumed.trials.map((trial) => trial.params)).toEqual(straight.trials.map((trial) => trial.params));
      expect(resumed.sampler.episodes).toBe(10);
      expect(storage.getStudy(resumed.studyId).systemAttrs[agentCheckpointSystemAttrKey]).toBeDefined();
    });
  }

  it('should re-run a trial interrupted by the kill with its own parameters, without learning from it', async () => {
    const storage = new InMemoryStorage();
    const first = openStudy(ddpgOptions, storage);
    await runTrials(first, 5);
    await first.prepareTrial();
    const interrupted = first.ask(); // the process dies while this trial runs
    const resumed = openStudy(ddpgOptions, storage);
    await runTrials(resumed, 2);
    const trials = resumed.trials;
    expect(trials[5]?.state).toBe('failed');
    expect(trials[6]?.params).toEqual(interrupted.params);
    // The retry is not an episode; the next episode is the one the dead process had planned.
    expect(resumed.sampler.episodes).toBe(6);
    expect(trials[7]?.params).toEqual(interrupted.params);
  });

  it('should ask for prepareTrial before ask with a cost model, and need the search space', async () => {
    const study = openStudy(ddpgOptions, new InMemoryStorage());
    expect(() => study.ask()).toThrow(/await study.prepareTrial\(\) before study.ask\(\)/);
    await study.prepareTrial();
    const trial = study.ask();
    expect(macsOf(trial.params)).toBeLessThanOrEqual(costModel.limit);
    expect(() => strategyOf(ddpgOptions).createStudy({ directions: ['maximize'] })).toThrow(ConfigError);
    // Without a cost model, ask plans by itself.
    const free = strategyOf(ddpgOptions).createStudy({ directions: ['minimize'], searchSpace: space });
    const freeTrial = free.ask();
    expect(Object.keys(freeTrial.params)).toHaveLength(space.length);
  });

  it('should not learn from failed trials, and sample parameters outside the search space at random', async () => {
    const study = openStudy(ddpgOptions, new InMemoryStorage());
    let calls = 0;
    await study.optimize(
      (trial) => {
        const extra = trial.suggestFloat('distiller.temperature', 1, 8);
        expect(extra).toBeGreaterThanOrEqual(1);
        expect(extra).toBeLessThanOrEqual(8);
        if (++calls % 2 === 0) throw new RangeError('evaluation diverged');
        return accuracyOf(trial.params);
      },
      { trials: 4, catch: [RangeError] },
    );
    expect(study.trials.map((trial) => trial.state)).toEqual(['complete', 'failed', 'complete', 'failed']);
    expect(study.trials[1]?.systemAttrs.fail_reason).toMatch(/evaluation diverged/);
    expect(study.sampler.episodes).toBe(2);
    await expect(study.optimize(() => { throw new TypeError('bug'); }, { trials: 1 })).rejects.toThrow(TypeError);
  });

  it('should compute the reward from the objectives as configured', () => {
    const accuracyOnly = strategyOf(ddpgOptions).createStudy({ directions: ['minimize'], searchSpace: space });
    expect(accuracyOnly.sampler.reward(accuracyOnly, [0.25])).toBe(-0.25); // an error rate, minimized
    const withLatency = strategyOf({ ...ddpgOptions, reward: 'accuracyLatency', latencyWeight: 0.2 }).createStudy({ directions: ['maximize', 'minimize'], searchSpace: space });
    expect(withLatency.sampler.reward(withLatency, [0.9, 4])).toBeCloseTo(0.9 - 0.2, 12); // the first latency is the reference
    expect(withLatency.sampler.reward(withLatency, [0.9, 2])).toBeCloseTo(0.9 - 0.1, 12);
    expect(() => withLatency.sampler.reward(withLatency, [0.9])).toThrow(/set accuracyObjective and latencyObjective/);
  });

  it('should refuse to resume a study whose agent was trained on another search space', async () => {
    const storage = new InMemoryStorage();
    await runTrials(openStudy(ddpgOptions, storage), 2);
    const other = strategyOf(ddpgOptions).createStudy({ directions: ['maximize'], storage, studyName: 'rl', loadIfExists: true, searchSpace: space.slice(1), costModel });
    await expect(other.prepareTrial()).rejects.toThrow(/resume it with the same agent and passes/);
  });

  it('should reject options of the other agent and bad values with the key at fault', () => {
    expect(() => validatePluginOptions(plugin, { agent: 'reinforce', trials: 10, noise: 0.3 })).toThrow(/noise applies to agent ddpg, not reinforce/);
    expect(() => validatePluginOptions(plugin, { agent: 'ddpg', trials: 10, bins: 5 })).toThrow(/bins applies to agent reinforce/);
    expect(() => validatePluginOptions(plugin, { trials: 0 })).toThrow(ConfigError);
    expect(strategyOf({ trials: 40 }).trials).toBe(40);
  });
});
