import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@open-autoglm/core';
import { scrambledHalton } from './scrambledHalton.js';

function uniform(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.nextFloat();
}

describe('scrambledHalton', () => {
  it('should fill every cell of a 2-d grid far more evenly than independent uniforms would', () => {
    // 256 points over 8 x 8 cells: 4 per cell on average. With independent uniforms some cell
    // gets 0 or >= 8 points with probability 0.99 (Poisson(4) per cell); this set stays in 1..7.
    const n = 256;
    for (const [a, b] of [[0, 1], [4, 9]] as const) {
      const points = scrambledHalton(n, 10, uniform(3));
      const counts = new Array<number>(64).fill(0);
      for (let p = 0; p < n; p++) {
        const cell = Math.floor((points[p * 10 + a] as number) * 8) * 8 + Math.floor((points[p * 10 + b] as number) * 8);
        counts[cell] = (counts[cell] as number) + 1;
      }
      expect(Math.min(...counts)).toBeGreaterThanOrEqual(1);
      expect(Math.max(...counts)).toBeLessThanOrEqual(7);
    }
  });

  it('should stay in [0, 1) and be reproducible for a seed, different across seeds', () => {
    const first = scrambledHalton(100, 3, uniform(1));
    expect(Math.min(...first)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...first)).toBeLessThan(1);
    expect(scrambledHalton(100, 3, uniform(1))).toEqual(first);
    expect(scrambledHalton(100, 3, uniform(2))).not.toEqual(first);
  });
});
