import { describe, expect, it } from 'vitest';
import { dominates, nonDominationRanks, paretoFrontIndices, SeededRandom } from '@open-autoglm/core';
import { hypervolume } from './hypervolume.js';
import { solveHssp } from './solveHssp.js';

// The exact volume of a union of boxes [p, reference] by inclusion-exclusion (exponential, tiny sets only).
function inclusionExclusion(points: number[][], reference: number[]): number {
  let total = 0;
  for (let mask = 1; mask < 1 << points.length; mask++) {
    const chosen = points.filter((_, i) => (mask >> i) & 1);
    const corner = reference.map((_, d) => Math.max(...chosen.map((p) => p[d] ?? 0)));
    const volume = corner.reduce((product, value, d) => product * Math.max(0, (reference[d] ?? 0) - value), 1);
    total += (chosen.length % 2 === 1 ? 1 : -1) * volume;
  }
  return total;
}

describe('hypervolume', () => {
  it('should match hand-computed volumes in 2 and 3 dimensions', () => {
    expect(hypervolume([[1, 2], [2, 1]], [3, 3])).toBe(3);
    expect(hypervolume([[1, 2], [2, 1], [2.5, 2.5]], [3, 3])).toBe(3); // a dominated point adds nothing
    expect(hypervolume([[4, 0]], [3, 3])).toBe(0); // outside the reference box
    expect(hypervolume([[1, 2, 2], [2, 1, 2], [2, 2, 1]], [3, 3, 3])).toBe(4); // 3 * 2 - 3 * 1 + 1
  });

  it('should agree with inclusion-exclusion on random sets in 3 and 4 dimensions', () => {
    const random = new SeededRandom(9);
    for (const dimensions of [3, 4]) {
      for (let repeat = 0; repeat < 5; repeat++) {
        const points = Array.from({ length: 7 }, () => Array.from({ length: dimensions }, () => random.nextFloat()));
        const reference = new Array<number>(dimensions).fill(1.1);
        expect(hypervolume(points, reference)).toBeCloseTo(inclusionExclusion(points, reference), 12);
      }
    }
  });
});

describe('Pareto dominance', () => {
  it('should rank fronts and find the non-dominated points', () => {
    const points = [
      [1, 4],
      [2, 2],
      [4, 1],
      [3, 3],
      [5, 5],
      [2, 2],
    ];
    expect(dominates([1, 1], [1, 2])).toBe(true);
    expect(dominates([1, 2], [1, 2])).toBe(false);
    expect(paretoFrontIndices(points)).toEqual([0, 1, 2, 5]);
    expect(nonDominationRanks(points)).toEqual([0, 0, 0, 1, 2, 0]);
  });
});

describe('solveHssp', () => {
  it('should pick greedily the points adding the most hypervolume', () => {
    // Reference (4, 4): alone, (2, 2) covers 4, (1, 3.5) 1.5, (3.5, 1) 1.5; then either extreme adds 0.5 more.
    const points = [
      [1, 3.5],
      [2, 2],
      [3.5, 1],
    ];
    expect(solveHssp(points, 1, [4, 4])).toEqual([1]);
    expect(solveHssp(points, 2, [4, 4])).toHaveLength(2);
    expect(solveHssp(points, 2, [4, 4])[0]).toBe(1);
  });
});
