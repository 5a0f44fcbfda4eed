import { describe, expect, it } from 'vitest';
import { logMarginalLikelihood } from './fitKernelParams.js';
import { GaussianProcess, kernelMatrix } from './GaussianProcess.js';
import { matern52, matern52Derivative } from './matern52.js';

describe('matern52', () => {
  it('should equal hand-computed values and derivatives', () => {
    expect(matern52(0)).toBe(1);
    // d2 = 0.2: sqrt(5 d2) = 1, so k = (1 + 1 + 1/3) e^-1 = 7/(3e) and k' = -5/6 * 2 e^-1.
    expect(matern52(0.2)).toBeCloseTo(0.8583853627333654, 15);
    expect(matern52Derivative(0.2)).toBeCloseTo((-5 / 3) * Math.exp(-1), 15);
    expect(matern52Derivative(0)).toBeCloseTo(-5 / 6, 15);
  });
});

describe('GaussianProcess', () => {
  // Two points, one continuous and one categorical coordinate.
  const data = { x: Float64Array.from([0.1, 0, 0.5, 1]), y: Float64Array.from([1.5, -0.5]), isCategorical: [false, true] };
  const params = { inverseSquaredLengthscales: Float64Array.from([1.25, 0.05]), kernelScale: 2, noiseVar: 0.1 };
  // d2 = 1.25 * 0.4^2 + 0.05 * [0 != 1] = 0.25, sqrt(5 d2) = 1.118033988749895.
  const r = Math.sqrt(1.25);
  const k12 = 2 * Math.exp(-r) * (1 + r + (5 / 3) * 0.25);

  it('should build the kernel matrix with Hamming distance on categorical coordinates', () => {
    const k = kernelMatrix(data, params);
    expect(Array.from(k)).toEqual([2, expect.closeTo(k12, 14), expect.closeTo(k12, 14), 2]);
  });

  it('should compute the log marginal likelihood of the closed 2 x 2 form', () => {
    const c = 2.1;
    const det = c * c - k12 * k12;
    const quadratic = (c * (1.5 ** 2 + 0.5 ** 2) - 2 * k12 * 1.5 * -0.5) / det;
    const expected = -0.5 * quadratic - 0.5 * Math.log(det) - Math.log(2 * Math.PI);
    expect(logMarginalLikelihood(data, params)).toBeCloseTo(expected, 13);
  });

  it('should give the hand-computed posterior of a single observation', () => {
    const one = { x: Float64Array.from([0.2]), y: Float64Array.from([0.8]), isCategorical: [false] };
    const gp = new GaussianProcess(one, { inverseSquaredLengthscales: Float64Array.from([5]), kernelScale: 1.5, noiseVar: 0.01 });
    // At x = 0.4: d2 = 5 * 0.04 = 0.2, k = 1.5 * 7/(3e).
    const k = 1.5 * 0.8583853627333654;
    const posterior = gp.posterior(Float64Array.from([0.4]));
    expect(posterior.mean).toBeCloseTo((k * 0.8) / 1.51, 14);
    expect(posterior.variance).toBeCloseTo(1.5 - (k * k) / 1.51, 14);
  });

  it('should differentiate the posterior mean and variance like finite differences', () => {
    const x = Float64Array.from([0.05, 0.4, 0.9, 0.3, 0.7, 0.6, 0.2, 0.1, 0.55, 0.35]);
    const many = { x, y: Float64Array.from([0.3, -1, 0.8, 0.1, -0.2]), isCategorical: [false, false] };
    const gp = new GaussianProcess(many, { inverseSquaredLengthscales: Float64Array.from([3, 0.5]), kernelScale: 1.2, noiseVar: 1e-3 });
    const point = Float64Array.from([0.33, 0.61]);
    const meanGradient = new Float64Array(2);
    const varianceGradient = new Float64Array(2);
    gp.posteriorWithGradient(point, meanGradient, varianceGradient);
    for (let k = 0; k < 2; k++) {
      const h = 1e-6;
      const plus = Float64Array.from(point);
      const minus = Float64Array.from(point);
      plus[k] = (plus[k] as number) + h;
      minus[k] = (minus[k] as number) - h;
      const [p, m] = [gp.posterior(plus), gp.posterior(minus)];
      expect(meanGradient[k]).toBeCloseTo((p.mean - m.mean) / (2 * h), 7);
      expect(varianceGradient[k]).toBeCloseTo((p.variance - m.variance) / (2 * h), 7);
    }
  });

  it('should refuse a kernel matrix that is not positive definite', () => {
    const duplicated = { x: Float64Array.from([0.5, 0.5]), y: Float64Array.from([1, 2]), isCategorical: [false] };
    expect(() => new GaussianProcess(duplicated, { inverseSquaredLengthscales: Float64Array.from([1]), kernelScale: 1, noiseVar: 0 })).toThrow(/not positive definite/);
  });
});
