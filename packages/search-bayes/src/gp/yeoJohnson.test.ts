import { describe, expect, it } from 'vitest';
import { fitYeoJohnsonLambda, yeoJohnson, yeoJohnsonLogLikelihood } from './yeoJohnson.js';

describe('yeoJohnson', () => {
  it('should match the transform computed by hand on both signs and at the special exponents', () => {
    expect(yeoJohnson(3, 1)).toBeCloseTo(3, 12); // the identity at lambda = 1
    expect(yeoJohnson(-3, 1)).toBeCloseTo(-3, 12);
    expect(yeoJohnson(3, 0)).toBeCloseTo(Math.log(4), 12);
    expect(yeoJohnson(-3, 2)).toBeCloseTo(-Math.log(4), 12);
    expect(yeoJohnson(3, 0.5)).toBeCloseTo((Math.sqrt(4) - 1) / 0.5, 12); // 2
    expect(yeoJohnson(-3, 0.5)).toBeCloseTo(-(4 ** 1.5 - 1) / 1.5, 12); // -14/3
    // Continuous in lambda at the special exponents.
    expect(yeoJohnson(3, 1e-9)).toBeCloseTo(Math.log(4), 6);
    expect(yeoJohnson(-3, 2 - 1e-9)).toBeCloseTo(-Math.log(4), 6);
  });

  it('should keep the order of values (a monotone warp keeps the best trial best)', () => {
    const values = [-40, -3, -0.5, 0, 0.2, 1, 7];
    for (const lambda of [-2, -0.5, 0, 0.7, 1, 1.5, 2]) {
      const warped = values.map((v) => yeoJohnson(v, lambda));
      for (let i = 1; i < warped.length; i++) expect(warped[i]).toBeGreaterThan(warped[i - 1] as number);
    }
  });

  it('should fit the exponent that maximizes the likelihood (checked on a fine grid)', () => {
    // Scores of a minimized heavy-tailed objective: many near the top, a long tail of bad ones.
    const values = [0.4, 0.38, 0.35, 0.3, 0.31, 0.2, 0.1, -0.2, -0.9, -2.5, -4.1, 0.36, 0.33, 0.29];
    const lambda = fitYeoJohnsonLambda(values);
    let gridBest = -2;
    for (let k = 0; k <= 8_000; k++) {
      const candidate = -2 + k / 2_000;
      if (yeoJohnsonLogLikelihood(values, candidate) > yeoJohnsonLogLikelihood(values, gridBest)) gridBest = candidate;
    }
    expect(Math.abs(lambda - gridBest)).toBeLessThan(5e-4);
    // A long lower tail is pulled in: lambda > 1 compresses the negative side.
    expect(lambda).toBeGreaterThan(1);
    // Symmetric, light-tailed values need (almost) no warping.
    expect(fitYeoJohnsonLambda([-1.5, -1, -0.5, 0, 0.5, 1, 1.5])).toBeCloseTo(1, 1);
  });
});
