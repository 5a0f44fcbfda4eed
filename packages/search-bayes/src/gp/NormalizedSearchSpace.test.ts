import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@open-autoglm/core';
import { NormalizedSearchSpace } from './NormalizedSearchSpace.js';

const space = new NormalizedSearchSpace({
  lr: { kind: 'float', low: 1e-4, high: 1e-1, log: true },
  ratio: { kind: 'float', low: 0, high: 0.5, step: 0.1 },
  layers: { kind: 'int', low: 1, high: 4 },
  width: { kind: 'int', low: 1, high: 64, log: true },
  act: { kind: 'categorical', choices: ['relu', 'gelu', 'tanh'] },
  momentum: { kind: 'float', low: 0.5, high: 1 },
});

describe('NormalizedSearchSpace', () => {
  it('should map each kind as Optuna does (log scale, half-step margins, choice indices)', () => {
    const x = space.normalize({ lr: 1e-2, ratio: 0.2, layers: 3, width: 8, act: 'tanh', momentum: 0.625 });
    // log(1e-2) is 2/3 of the way from log(1e-4) to log(1e-1).
    expect(x[0]).toBeCloseTo(2 / 3, 14);
    // ratio 0.2 in [-0.05, 0.55]: 0.25 / 0.6.
    expect(x[1]).toBeCloseTo(0.25 / 0.6, 14);
    // layers 3 in [0.5, 4.5]: 2.5 / 4.
    expect(x[2]).toBeCloseTo(0.625, 14);
    // width 8 in log [0.5, 64.5].
    expect(x[3]).toBeCloseTo((Math.log(8) - Math.log(0.5)) / (Math.log(64.5) - Math.log(0.5)), 14);
    expect(x[4]).toBe(2);
    expect(x[5]).toBeCloseTo(0.25, 14);
    expect(space.isCategorical).toEqual([false, false, false, false, true, false]);
    expect(space.continuousIndices).toEqual([0, 5]);
    expect(space.discreteIndices).toEqual([1, 2, 3, 4]);
  });

  it('should give back valid values: in range, on the grid, integers as integers', () => {
    const params = space.unnormalize(Float64Array.from([1.2, 0.52, 0.99, 0.4, 1.4, -0.1]));
    expect(params).toEqual({ lr: 0.1, ratio: expect.closeTo(0.3, 15), layers: 4, width: 3, act: 'gelu', momentum: 0.5 });
    expect(Number.isInteger(params.width)).toBe(true);
    const roundTrip = { lr: 3e-3, ratio: 0.4, layers: 2, width: 17, act: 'relu', momentum: 0.9 };
    const back = space.unnormalize(space.normalize(roundTrip));
    expect(back.lr).toBeCloseTo(3e-3, 15);
    expect({ ...back, lr: 3e-3, ratio: 0.4 }).toEqual(roundTrip);
    expect(back.ratio).toBeCloseTo(0.4, 15);
  });

  it('should list grids in normalized coordinates and sample onto them', () => {
    expect(Array.from(space.gridOf(2))).toEqual([0.125, 0.375, 0.625, 0.875]);
    expect(Array.from(space.gridOf(4))).toEqual([0, 1, 2]);
    const samples = space.sample(64, (() => { const r = new SeededRandom(1); return () => r.nextFloat(); })());
    const grids = space.discreteIndices.map((i) => Array.from(space.gridOf(i)));
    for (let p = 0; p < 64; p++) {
      space.discreteIndices.forEach((index, j) => {
        const value = samples[p * 6 + index] as number;
        expect((grids[j] as number[]).some((g) => Math.abs(g - value) < 1e-12)).toBe(true);
      });
      for (const index of space.continuousIndices) {
        expect(samples[p * 6 + index]).toBeGreaterThanOrEqual(0);
        expect(samples[p * 6 + index]).toBeLessThan(1);
      }
    }
  });
});
