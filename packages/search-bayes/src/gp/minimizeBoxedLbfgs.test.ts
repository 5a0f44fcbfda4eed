import { describe, expect, it } from 'vitest';
import { minimizeBoxedLbfgs } from './minimizeBoxedLbfgs.js';

describe('minimizeBoxedLbfgs', () => {
  it('should find the minimum of the Rosenbrock function without bounds', () => {
    const result = minimizeBoxedLbfgs(
      (x, g) => {
        const [a, b] = [x[0] as number, x[1] as number];
        g[0] = -400 * a * (b - a * a) - 2 * (1 - a);
        g[1] = 200 * (b - a * a);
        return 100 * (b - a * a) ** 2 + (1 - a) ** 2;
      },
      Float64Array.from([-1.2, 1]),
      { gradientTolerance: 1e-8, relativeTolerance: 0 },
    );
    expect(result.converged).toBe(true);
    expect(result.x[0]).toBeCloseTo(1, 5);
    expect(result.x[1]).toBeCloseTo(1, 5);
  });

  it('should stop on the bound when the unconstrained minimum lies outside the box', () => {
    // (x - 2)^2 + (y + 1)^2 + x y on [0, 1]^2: the minimum is the corner (1, 0) (hand-checked:
    // the gradient there, (2(1-2) + 0, 2(0+1) + 1) = (-2, 3), points out of the box on both axes).
    const result = minimizeBoxedLbfgs(
      (x, g) => {
        const [a, b] = [x[0] as number, x[1] as number];
        g[0] = 2 * (a - 2) + b;
        g[1] = 2 * (b + 1) + a;
        return (a - 2) ** 2 + (b + 1) ** 2 + a * b;
      },
      Float64Array.from([0.3, 0.8]),
      { lower: Float64Array.from([0, 0]), upper: Float64Array.from([1, 1]) },
    );
    expect(result.converged).toBe(true);
    expect(Array.from(result.x)).toEqual([1, 0]);
    expect(result.value).toBeCloseTo(2, 12);
  });

  it('should report a non-finite starting point instead of iterating', () => {
    const result = minimizeBoxedLbfgs(() => Number.NaN, Float64Array.from([0]));
    expect(result.converged).toBe(false);
    expect(result.message).toMatch(/not finite/);
  });
});
