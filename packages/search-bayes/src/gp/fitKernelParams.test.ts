import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@open-autoglm/core';
import { cholesky } from './cholesky.js';
import { fitKernelParams, gammaLengthscalePrior, negativeLogPosterior, optunaLengthscalePrior } from './fitKernelParams.js';
import type { LengthscalePrior } from './fitKernelParams.js';
import { kernelMatrix } from './GaussianProcess.js';

describe('negativeLogPosterior', () => {
  it('should have the gradient of central finite differences in every raw parameter', () => {
    const random = new SeededRandom(11);
    const n = 14;
    const x = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      x[i * 3] = random.nextFloat();
      x[i * 3 + 1] = random.nextFloat();
      x[i * 3 + 2] = random.nextInt(3);
    }
    const y = Float64Array.from({ length: n }, (_, i) => Math.sin(6 * (x[i * 3] as number)) - 0.4 * (x[i * 3 + 2] as number));
    const data = { x, y, isCategorical: [false, false, true] };
    for (const [deterministicObjective, prior] of [[false, optunaLengthscalePrior], [true, optunaLengthscalePrior], [false, gammaLengthscalePrior(3, 6)]] as const) {
      const mapping = { minimumNoise: 1e-6, deterministicObjective };
      const raw = Float64Array.from([0.4, -0.7, 0.2, 0.3, -2.5]);
      const gradient = new Float64Array(5);
      negativeLogPosterior(data, raw, mapping, gradient, prior);
      const scratch = new Float64Array(5);
      for (let k = 0; k < 5; k++) {
        const h = 1e-6;
        const plus = Float64Array.from(raw);
        const minus = Float64Array.from(raw);
        plus[k] = (plus[k] as number) + h;
        minus[k] = (minus[k] as number) - h;
        const numeric = (negativeLogPosterior(data, plus, mapping, scratch, prior) - negativeLogPosterior(data, minus, mapping, scratch, prior)) / (2 * h);
        expect(Math.abs((gradient[k] as number) - numeric)).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
      }
    }
  });
});

describe('lengthscale priors', () => {
  const logIlsDerivative = (prior: LengthscalePrior, ils: number): number => {
    const h = 1e-6;
    return (prior(ils * Math.exp(h)).logDensity - prior(ils * Math.exp(-h)).logDensity) / (2 * h);
  };

  it('should give the derivative over log ils of central finite differences', () => {
    for (const prior of [optunaLengthscalePrior, gammaLengthscalePrior(3, 6), gammaLengthscalePrior(1.5, 0.5)]) {
      for (const ils of [0.03, 0.7, 1, 9, 250]) {
        const numeric = logIlsDerivative(prior, ils);
        expect(Math.abs(prior(ils).derivative - numeric)).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
      }
    }
  });

  it('should differ between two lengthscales as the log of the Gamma(3, 6) density ratio', () => {
    // The Gamma(a, b) density b^a l^(a-1) e^(-b l) / Gamma(a), written out with Gamma(3) = 2.
    const density = (l: number): number => (6 ** 3 * l * l * Math.exp(-6 * l)) / 2;
    const prior = gammaLengthscalePrior(3, 6);
    for (const [l1, l2] of [
      [0.1, 0.5],
      [1 / 3, 2],
      [0.05, 4],
    ] as const) {
      const difference = prior(1 / (l1 * l1)).logDensity - prior(1 / (l2 * l2)).logDensity;
      expect(difference).toBeCloseTo(Math.log(density(l1) / density(l2)), 10);
    }
    // Its mode (a - 1) / b = 1/3: ils = 9 is a stationary point.
    expect(prior(9).derivative).toBeCloseTo(0, 12);
  });
});

describe('fitKernelParams', () => {
  it('should fit shorter lengthscales under the Gamma(3, 6) prior than under Optuna\'s on a smooth function', () => {
    const random = new SeededRandom(5);
    const n = 12;
    const x = new Float64Array(n * 2).map(() => random.nextFloat());
    const y = Float64Array.from({ length: n }, (_, i) => (x[2 * i] as number) + 0.5 * (x[2 * i + 1] as number) ** 2);
    const mean = y.reduce((a, b) => a + b, 0) / n;
    const data = { x, y: y.map((v) => v - mean), isCategorical: [false, false] };
    const optuna = fitKernelParams(data);
    const gamma = fitKernelParams(data, { lengthscalePrior: gammaLengthscalePrior(3, 6) });
    for (let q = 0; q < 2; q++) {
      expect(gamma.params.inverseSquaredLengthscales[q] as number).toBeGreaterThan(optuna.params.inverseSquaredLengthscales[q] as number);
    }
  });

  it('should recover the lengthscales of a sample drawn from a known GP', () => {
    // One sample of a GP with lengthscales 0.2 and 1 (ils 25 and 1), scale 1, noise 1e-4.
    const random = new SeededRandom(7);
    const n = 80;
    const x = new Float64Array(n * 2).map(() => random.nextFloat());
    const truth = { inverseSquaredLengthscales: Float64Array.from([25, 1]), kernelScale: 1, noiseVar: 1e-4 };
    const c = kernelMatrix({ x, y: new Float64Array(n), isCategorical: [false, false] }, truth);
    for (let i = 0; i < n; i++) c[i * n + i] = (c[i * n + i] as number) + truth.noiseVar;
    const l = cholesky(c, n) as Float64Array;
    const z = Float64Array.from({ length: n }, () => random.nextNormal());
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let k = 0; k <= i; k++) y[i] = (y[i] as number) + (l[i * n + k] as number) * (z[k] as number);

    const gp = fitKernelParams({ x, y, isCategorical: [false, false] });
    const [fastScale, slowScale] = Array.from(gp.params.inverseSquaredLengthscales, (v) => 1 / Math.sqrt(v));
    expect(fastScale).toBeGreaterThan(0.2 / 1.5);
    expect(fastScale).toBeLessThan(0.2 * 1.5);
    expect(slowScale).toBeGreaterThan(1 / 2);
    expect(slowScale).toBeLessThan(1 * 2);
    expect(gp.params.noiseVar).toBeLessThan(1e-2);
  });

  it('should give the same fit from a warm start at the previous optimum', () => {
    const random = new SeededRandom(8);
    const x = new Float64Array(30).map(() => random.nextFloat());
    const y = Float64Array.from(x, (v) => Math.cos(7 * v));
    const data = { x, y, isCategorical: [false] };
    const cold = fitKernelParams(data);
    const warm = fitKernelParams(data, { initial: cold.params });
    expect(warm.params.inverseSquaredLengthscales[0]).toBeCloseTo(cold.params.inverseSquaredLengthscales[0] as number, 1);
    expect(warm.params.kernelScale).toBeCloseTo(cold.params.kernelScale, 1);
  });
});
