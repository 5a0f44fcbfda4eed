import { describe, expect, it } from 'vitest';
import { SeededRandom } from './SeededRandom.js';

describe('SeededRandom', () => {
  it('should repeat its sequence for a seed and differ between seeds', () => {
    const draw = (seed: number): number[] => {
      const random = new SeededRandom(seed);
      return Array.from({ length: 5 }, () => random.uniform());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(1)).not.toEqual(draw(2 ** 32 + 1));
  });

  it('should draw uniforms in [0, 1) with the right mean and variance', () => {
    const random = new SeededRandom(3);
    const n = 100_000;
    let sum = 0;
    let sumSquares = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = random.uniform();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      sumSquares += u * u;
    }
    expect(outside).toBe(0);
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(sumSquares / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 2);
  });

  it('should draw standard normals and weighted indices with the right frequencies', () => {
    const random = new SeededRandom(5);
    const n = 100_000;
    let sum = 0;
    let sumSquares = 0;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const z = random.normal();
      sum += z;
      sumSquares += z * z;
      counts[random.weightedIndex([1, 0, 3])]! += 1;
    }
    expect(sum / n).toBeCloseTo(0, 1);
    expect(sumSquares / n).toBeCloseTo(1, 1);
    expect(counts[1]).toBe(0);
    expect(counts[0]! / n).toBeCloseTo(0.25, 2);
  });
});
