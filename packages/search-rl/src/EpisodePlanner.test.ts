import { ConfigError, SeededRandom, type SearchSpace, type TrialParams } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { EpisodePlanner, drivePlanning, drivePlanningSync, stateSize, type StepPolicy } from './EpisodePlanner.js';

// A chain of conv layers whose MACs scale with the kept input and output channels (what pruning
// a layer's output channels does to it and to the next layer), plus a float/int8 choice on the
// last layer that halves its cost.
const layerMacs = [40, 120, 200, 80, 60];
const space: SearchSpace = [
  { name: 'ratio.c0', distribution: { kind: 'float', low: 0, high: 0.9 }, layer: 'c0', features: { index: 0, opType: 'Conv', inChannels: 1, outChannels: 8, kernel: 9, stride: 1, macs: 40, params: 80 } },
  { name: 'ratio.c1', distribution: { kind: 'float', low: 0, high: 0.8, step: 0.05 }, layer: 'c1', features: { index: 1, opType: 'Conv', inChannels: 8, outChannels: 16, kernel: 9, stride: 2, macs: 120, params: 1200 } },
  { name: 'keep.c2', distribution: { kind: 'int', low: 4, high: 32, step: 4 }, layer: 'c2', features: { index: 2, opType: 'Conv', inChannels: 16, outChannels: 32, kernel: 9, stride: 1, macs: 200, params: 4600 } },
  { name: 'ratio.c3', distribution: { kind: 'float', low: 0, high: 0.75 }, layer: 'c3', features: { index: 3, opType: 'Conv', inChannels: 32, outChannels: 32, kernel: 1, stride: 1, macs: 80, params: 1000 } },
  { name: 'precision.fc', distribution: { kind: 'categorical', choices: ['int8', 'float'] }, layer: 'fc', features: { index: 4, opType: 'Gemm', inChannels: 32, outChannels: 10, kernel: 1, stride: 1, macs: 60, params: 330 } },
];
const baseline = layerMacs.reduce((a, b) => a + b, 0);

function keptFractions(plan: TrialParams): number[] {
  return [1 - (plan['ratio.c0'] as number), 1 - (plan['ratio.c1'] as number), (plan['keep.c2'] as number) / 32, 1 - (plan['ratio.c3'] as number)];
}

function macsOf(plan: TrialParams): number {
  const kept = keptFractions(plan);
  let total = 0;
  for (let i = 0; i < 4; i++) total += (layerMacs[i] as number) * (i === 0 ? 1 : (kept[i - 1] as number)) * (kept[i] as number);
  return total + (layerMacs[4] as number) * (kept[3] as number) * (plan['precision.fc'] === 'int8' ? 0.5 : 1);
}

function randomPolicy(seed: number): StepPolicy {
  const random = new SeededRandom(seed);
  return { decide: (_state, count) => (count === undefined ? random.nextFloat() : random.nextInt(count)) };
}

describe('EpisodePlanner', () => {
  it('should keep every plan within the budget whatever the policy proposes, and use the budget', async () => {
    for (const fraction of [0.2, 0.35, 0.5, 0.8]) {
      const limit = fraction * baseline;
      const planner = new EpisodePlanner(space, { budget: { baseline, limit } });
      for (let episode = 0; episode < 40; episode++) {
        const estimate = async (plan: TrialParams): Promise<number> => macsOf(plan);
        const plan = await drivePlanning(planner.plan(randomPolicy(episode)), estimate);
        expect(macsOf(plan.params)).toBeLessThanOrEqual(limit);
        expect(plan.cost).toBe(macsOf(plan.params));
        expect(plan.decisions).toHaveLength(space.length);
      }
      // A policy that never compresses is raised just enough: the plan lands on the budget
      // (within the bisection tolerance and the grids' steps).
      const lazy = drivePlanningSync(planner.plan({ decide: () => 0 }), macsOf);
      expect(lazy.cost).toBeLessThanOrEqual(limit);
      expect(lazy.cost).toBeGreaterThan(limit - 0.05 * baseline);
    }
  });

  it('should give the policy the layer embedding, the budget so far and the previous action', () => {
    const planner = new EpisodePlanner(space, { budget: { baseline, limit: 0.5 * baseline } });
    const plan = drivePlanningSync(planner.plan({ decide: (_state, count) => (count === undefined ? 1 : count - 1) }), macsOf);
    const states = plan.decisions.map((decision) => decision.state);
    expect(states.every((state) => state.length === stateSize && state.every((value) => value >= 0 && value <= 1))).toBe(true);
    expect(states.map((state) => state[0])).toEqual([0, 0.25, 0.5, 0.75, 1]); // index
    expect(states.map((state) => state[1])).toEqual([0, 0, 0, 0, 1]); // Conv, Gemm
    expect(states[0]?.[6]).toBeCloseTo(0, 12); // the smallest MACs share
    expect(states[2]?.[6]).toBeCloseTo(1, 12); // the largest
    expect(states[0]?.[8]).toBe(0); // nothing removed before the first decision
    expect(states[0]?.[9]).toBeCloseTo(0.5, 12); // half the baseline still to remove
    expect(states[1]?.[8]).toBeGreaterThan(0); // the first layer at 0.9 removed MACs
    expect(states[1]?.[10]).toBe(1); // previous action: the most compressive
    // Most compressive everywhere: ratio at its high end, keep at its low end, int8.
    expect(plan.params).toEqual({ 'ratio.c0': 0.9, 'ratio.c1': 0.8, 'keep.c2': 4, 'ratio.c3': 0.75, 'precision.fc': 'int8' });
  });

  it('should map positions straight to values without a budget, and discretize continuous steps on request', () => {
    const planner = new EpisodePlanner(space);
    const plan = drivePlanningSync(planner.plan({ decide: (_state, count) => (count === undefined ? 0.5 : 1) }), () => {
      throw new Error('no estimate without a budget');
    });
    expect(plan.params).toEqual({ 'ratio.c0': 0.45, 'ratio.c1': 0.05, 'keep.c2': 8, 'ratio.c3': 0.375, 'precision.fc': 'float' });
    expect(plan.cost).toBeUndefined();
    const binned = new EpisodePlanner(space, { continuousBins: 4 });
    const binnedPlan = drivePlanningSync(binned.plan({ decide: (_state, count) => (count ?? 0) - 1 }), () => 0);
    expect(binnedPlan.params['ratio.c0']).toBeCloseTo(0.9, 12);
    expect(binned.choiceCounts).toEqual([4, 17, 8, 4, 2]);
  });

  it('should refuse a budget that even the most compressive plan exceeds, and a malformed space', () => {
    const planner = new EpisodePlanner(space, { budget: { baseline, limit: 1 } });
    expect(() => drivePlanningSync(planner.plan(randomPolicy(0)), macsOf)).toThrow(ConfigError);
    expect(() => drivePlanningSync(planner.plan(randomPolicy(0)), macsOf)).toThrow(/cannot be met/);
    expect(() => new EpisodePlanner([])).toThrow(/non-empty search space/);
    expect(() => new EpisodePlanner([space[0]!, space[0]!])).toThrow(/appears twice/);
  });
});
