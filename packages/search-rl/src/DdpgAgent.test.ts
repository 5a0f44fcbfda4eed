import type { JsonValue, SearchSpace } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { DdpgAgent, type DdpgAgentOptions } from './DdpgAgent.js';
import { EpisodePlanner, drivePlanningSync, stateSize } from './EpisodePlanner.js';
import { tf } from './tensorflow.js';

// Three layers; the reward peaks at ratios 0.2, 0.5, 0.7 (a separable quadratic).
const targets = [0.2, 0.5, 0.7];
const space: SearchSpace = targets.map((_, i) => ({
  name: `ratio.l${i}`,
  distribution: { kind: 'float', low: 0, high: 1 },
  layer: `l${i}`,
  features: { index: i, opType: 'Conv', outChannels: 16 * (i + 1), macs: 100 * (i + 1) },
}));
const options: DdpgAgentOptions = {
  hiddenUnits: 32,
  actorLearningRate: 3e-3,
  criticLearningRate: 1e-2,
  batchSize: 32,
  bufferSize: 600,
  warmupEpisodes: 15,
  initialNoise: 0.3,
  noiseDecay: 0.95,
  baselineDecay: 0.9,
  seed: 3,
};

function runEpisodes(agent: DdpgAgent, planner: EpisodePlanner, episodes: number): number[][] {
  const plans: number[][] = [];
  for (let e = 0; e < episodes; e++) {
    const plan = drivePlanningSync(planner.plan(agent), () => 0);
    const ratios = targets.map((_, i) => plan.params[`ratio.l${i}`] as number);
    agent.learn(plan.decisions, -ratios.reduce((sum, r, i) => sum + (r - (targets[i] as number)) ** 2, 0));
    plans.push(ratios);
  }
  return plans;
}

describe('DdpgAgent', () => {
  it('should learn actions that raise the episode reward far above random ones', () => {
    const agent = new DdpgAgent(stateSize, options);
    const planner = new EpisodePlanner(space);
    const plans = runEpisodes(agent, planner, 120);
    const reward = (ratios: readonly number[]): number => -ratios.reduce((sum, r, i) => sum + (r - (targets[i] as number)) ** 2, 0);
    const warmupMean = plans.slice(0, options.warmupEpisodes).reduce((sum, ratios) => sum + reward(ratios), 0) / options.warmupEpisodes;
    const greedy = drivePlanningSync(planner.plan({ decide: (state) => agent.greedyPosition(state) }), () => 0);
    const greedyReward = reward(targets.map((_, i) => greedy.params[`ratio.l${i}`] as number));
    // Uniform actions score about -0.3; the learned plan is within ~0.1 of every target.
    expect(warmupMean).toBeLessThan(-0.15);
    expect(greedyReward).toBeGreaterThan(-0.03);
    expect(agent.noise).toBeCloseTo(0.3 * 0.95 ** 105, 12);
    agent.dispose();
  });

  it('should be reproducible per seed and resume exactly from a checkpoint', () => {
    const planner = new EpisodePlanner(space);
    const straight = new DdpgAgent(stateSize, options);
    const expected = runEpisodes(straight, planner, 24);
    const first = new DdpgAgent(stateSize, options);
    const head = runEpisodes(first, planner, 18);
    expect(head).toEqual(expected.slice(0, 18));
    const saved = JSON.parse(JSON.stringify(first.toJson())) as JsonValue;
    first.dispose();
    const resumed = new DdpgAgent(stateSize, { ...options });
    const tensors = tf.memory().numTensors;
    resumed.loadJson(saved);
    expect(resumed.episodes).toBe(18);
    expect(runEpisodes(resumed, planner, 6)).toEqual(expected.slice(18));
    // Neither restoring nor learning leaves tensors behind.
    expect(tf.memory().numTensors).toBe(tensors);
    straight.dispose();
    resumed.dispose();
  });
});
