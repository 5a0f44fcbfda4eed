import { SeededRandom } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { LatinHypercubeDesign } from './LatinHypercubeDesign.js';

function draw(seed: number, size: number, names: readonly string[]): number[][] {
  const random = new SeededRandom(seed);
  const design = new LatinHypercubeDesign(size, () => random.nextFloat());
  // Point by point, as trials ask for their parameters.
  return Array.from({ length: size }, (_, point) => names.map((name) => design.coordinate(name, point)));
}

describe('LatinHypercubeDesign', () => {
  it('should put exactly one point in each of the size strata of every coordinate', () => {
    const points = draw(3, 10, ['a', 'b', 'c', 'd']);
    for (let j = 0; j < 4; j++) {
      const strata = points.map((p) => Math.floor((p[j] as number) * 10)).sort((x, y) => x - y);
      expect(strata).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const p of points) {
        expect(p[j]).toBeGreaterThanOrEqual(0);
        expect(p[j]).toBeLessThan(1);
      }
    }
  });

  it('should permute the strata independently per coordinate and repeat for a seed', () => {
    const points = draw(7, 10, ['a', 'b']);
    const strataOf = (j: number): number[] => points.map((p) => Math.floor((p[j] as number) * 10));
    expect(strataOf(0)).not.toEqual(strataOf(1));
    expect(draw(7, 10, ['a', 'b'])).toEqual(points);
    expect(draw(8, 10, ['a', 'b'])).not.toEqual(points);
  });

  it('should reject a point outside the design', () => {
    const design = new LatinHypercubeDesign(4, () => 0.5);
    expect(() => design.coordinate('a', 4)).toThrow(/outside a Latin hypercube of 4 points/);
    expect(() => new LatinHypercubeDesign(0, () => 0.5)).toThrow(RangeError);
  });
});
