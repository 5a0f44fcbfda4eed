import type { JsonValue, SearchSpace } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { EpisodePlanner, drivePlanningSync, stateSize } from './EpisodePlanner.js';
import { ReinforceAgent, type ReinforceAgentOptions } from './ReinforceAgent.js';
import { tf } from './tensorflow.js';

// Four layers, int8 or float each (HAQ's choice); int8 pays off on the two large layers only.
const space: SearchSpace = [0, 1, 2, 3].map((i) => ({
  name: `precision.l${i}`,
  distribution: { kind: 'categorical', choices: ['float', 'int8'] },
  layer: `l${i}`,
  features: { index: i, opType: 'Conv', macs: [10, 400, 20, 300][i] as number },
}));
const best = ['float', 'int8', 'float', 'int8'];
const options: ReinforceAgentOptions = { hiddenUnits: 16, learningRate: 0.05, warmupEpisodes: 5, entropyWeight: 0.01, baselineDecay: 0.8, seed: 11 };

function runEpisodes(agent: ReinforceAgent, planner: EpisodePlanner, episodes: number): string[][] {
  const plans: string[][] = [];
  for (let e = 0; e < episodes; e++) {
    const plan = drivePlanningSync(planner.plan(agent), () => 0);
    const choices = best.map((_, i) => plan.params[`precision.l${i}`] as string);
    agent.learn(plan.decisions, choices.filter((choice, i) => choice === best[i]).length);
    plans.push(choices);
  }
  return plans;
}

describe('ReinforceAgent', () => {
  it('should learn the best choice of each layer', () => {
    const agent = new ReinforceAgent(stateSize, 2, options);
    const planner = new EpisodePlanner(space);
    runEpisodes(agent, planner, 120);
    const plan = drivePlanningSync(planner.plan({ decide: (state, count) => { const p = agent.probabilities(state, count ?? 2); return p.indexOf(Math.max(...p)); } }), () => 0);
    expect(best.map((_, i) => plan.params[`precision.l${i}`])).toEqual(best);
    agent.dispose();
  });

  it('should be reproducible per seed, resume exactly, and refuse continuous steps', () => {
    const planner = new EpisodePlanner(space);
    const straight = new ReinforceAgent(stateSize, 2, options);
    const expected = runEpisodes(straight, planner, 16);
    const first = new ReinforceAgent(stateSize, 2, options);
    expect(runEpisodes(first, planner, 10)).toEqual(expected.slice(0, 10));
    const saved = JSON.parse(JSON.stringify(first.toJson())) as JsonValue;
    const resumed = new ReinforceAgent(stateSize, 2, options);
    const tensors = tf.memory().numTensors;
    resumed.loadJson(saved);
    expect(runEpisodes(resumed, planner, 6)).toEqual(expected.slice(10));
    expect(tf.memory().numTensors).toBe(tensors);
    expect(() => resumed.decide(new Array<number>(stateSize).fill(0), undefined)).toThrow(/at most 2 choices/);
    for (const agent of [straight, first, resumed]) agent.dispose();
  });
});
