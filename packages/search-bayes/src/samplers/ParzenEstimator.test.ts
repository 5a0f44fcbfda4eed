import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@open-autoglm/core';
import { ParzenEstimator, type ParzenEstimatorParameters } from './ParzenEstimator.js';
import { defaultWeights } from './TPESampler.js';

const univariate: ParzenEstimatorParameters = {
  priorWeight: 1,
  considerMagicClip: true,
  considerEndpoints: false,
  weights: defaultWeights,
  multivariate: false,
};

// The normal density truncated to [low, high], normalized by Simpson's rule (independent of erf).
function truncatedNormalPdfByQuadrature(x: number, mu: number, sigma: number, low: number, high: number): number {
  const density = (t: number): number => Math.exp(-0.5 * ((t - mu) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI));
  const n = 4000;
  const h = (high - low) / n;
  let mass = 0;
  for (let i = 0; i <= n; i++) mass += (i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2) * density(low + i * h);
  return density(x) / ((mass * h) / 3);
}

describe('ParzenEstimator', () => {
  it('should build univariate kernels as Optuna does (neighbour gaps, no endpoints, magic clip, wide prior)', () => {
    // Observations 0.2 and 0.6 on [0, 1], plus the prior at 0.5. Sorted with the bounds:
    // 0, 0.2, 0.5, 0.6, 1. Sigmas: 0.2 -> gap to 0.5 = 0.3 (no endpoint), 0.6 -> 0.6 - 0.5 = 0.1,
    // clipped up to 1 / min(100, 1 + 3) = 0.25; the prior gets sigma 1. Weights 1/3 each.
    const space = { x: { kind: 'float', low: 0, high: 1 } } as const;
    const exact = new ParzenEstimator({ x: Float64Array.of(0.2, 0.6) }, space, { ...univariate, exactDensity: true });
    // Optuna's scoring leaves out each kernel's 1/sigma: the kernel scores are the densities times sigma.
    const optunaScored = new ParzenEstimator({ x: Float64Array.of(0.2, 0.6) }, space, univariate);
    for (const x of [0.05, 0.4, 0.93]) {
      const kernels = [truncatedNormalPdfByQuadrature(x, 0.2, 0.3, 0, 1), truncatedNormalPdfByQuadrature(x, 0.6, 0.25, 0, 1), truncatedNormalPdfByQuadrature(x, 0.5, 1, 0, 1)];
      expect(exact.logPdf({ x: Float64Array.of(x) })[0]).toBeCloseTo(Math.log((kernels[0]! + kernels[1]! + kernels[2]!) / 3), 8);
      expect(optunaScored.logPdf({ x: Float64Array.of(x) })[0]).toBeCloseTo(Math.log((0.3 * kernels[0]! + 0.25 * kernels[1]! + kernels[2]!) / 3), 8);
    }
  });

  it('should give multivariate kernels the univariate neighbour gaps per dimension with multivariateBandwidth neighbourGaps', () => {
    // x: 0.2 and 0.6 get sigmas 0.3 and 0.25 (as in the test above). y on [0, 1]: 0.7 and 0.1 with
    // the prior at 0.5 sort to 0, 0.1, 0.5, 0.7, 1: 0.1 -> 0.5 - 0.1 = 0.4 (no endpoint), 0.7 ->
    // 0.7 - 0.5 = 0.2, clipped up to 0.25. A component's density is the product over dimensions.
    const space = { x: { kind: 'float', low: 0, high: 1 }, y: { kind: 'float', low: 0, high: 1 } } as const;
    const estimator = new ParzenEstimator({ x: Float64Array.of(0.2, 0.6), y: Float64Array.of(0.7, 0.1) }, space, {
      ...univariate,
      multivariate: true,
      multivariateBandwidth: 'neighbourGaps',
      exactDensity: true,
    });
    for (const [x, y] of [
      [0.05, 0.9],
      [0.4, 0.3],
      [0.93, 0.55],
    ] as const) {
      const components = [
        truncatedNormalPdfByQuadrature(x, 0.2, 0.3, 0, 1) * truncatedNormalPdfByQuadrature(y, 0.7, 0.25, 0, 1),
        truncatedNormalPdfByQuadrature(x, 0.6, 0.25, 0, 1) * truncatedNormalPdfByQuadrature(y, 0.1, 0.4, 0, 1),
        truncatedNormalPdfByQuadrature(x, 0.5, 1, 0, 1) * truncatedNormalPdfByQuadrature(y, 0.5, 1, 0, 1),
      ];
      expect(estimator.logPdf({ x: Float64Array.of(x), y: Float64Array.of(y) })[0]).toBeCloseTo(Math.log((components[0]! + components[1]! + components[2]!) / 3), 8);
    }
  });

  it('should leave the prior out of the neighbour gaps with priorInNeighbourGaps false (Optuna >= 4.6)', () => {
    // 0.2 and 0.6 on [0, 1] without the prior's 0.5 sort to 0, 0.2, 0.6, 1; no endpoints: both
    // kernels take the inner gap 0.4 (with the prior in the gaps they were 0.3 and 0.25). The
    // prior keeps sigma 1 and its weight.
    const space = { x: { kind: 'float', low: 0, high: 1 } } as const;
    const estimator = new ParzenEstimator({ x: Float64Array.of(0.2, 0.6) }, space, { ...univariate, priorInNeighbourGaps: false, exactDensity: true });
    for (const x of [0.05, 0.4, 0.93]) {
      const kernels = [truncatedNormalPdfByQuadrature(x, 0.2, 0.4, 0, 1), truncatedNormalPdfByQuadrature(x, 0.6, 0.4, 0, 1), truncatedNormalPdfByQuadrature(x, 0.5, 1, 0, 1)];
      expect(estimator.logPdf({ x: Float64Array.of(x) })[0]).toBeCloseTo(Math.log((kernels[0]! + kernels[1]! + kernels[2]!) / 3), 8);
    }
  });

  it('should smooth categorical observations with the prior weight', () => {
    // Rows: each observation adds 1 to its choice over a fill of 1/(n+1) = 1/4; the prior row is uniform.
    const estimator = new ParzenEstimator({ c: Float64Array.of(1, 1, 0) }, { c: { kind: 'categorical', choices: ['a', 'b', 'c'] } }, univariate);
    const row = (hit: number): number[] => [0, 1, 2].map((choice) => (choice === hit ? 1.25 : 0.25) / 1.75);
    const mixture = [0, 1, 2].map((choice) => (row(1)[choice]! * 2 + row(0)[choice]! + 1 / 3) / 4);
    const logPdf = estimator.logPdf({ c: Float64Array.of(0, 1, 2) });
    expect([...logPdf].map(Math.exp)).toEqual(mixture.map((p) => expect.closeTo(p, 12)));
    expect(mixture.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 12);
  });

  it('should give integer values the mass of their grid cell, summing to 1 over the grid', () => {
    const estimator = new ParzenEstimator({ n: Float64Array.of(2, 3, 9) }, { n: { kind: 'int', low: 0, high: 10, step: 1 } }, univariate);
    const grid = Float64Array.from({ length: 11 }, (_, i) => i);
    const total = [...estimator.logPdf({ n: grid })].reduce((sum, logP) => sum + Math.exp(logP), 0);
    expect(total).toBeCloseTo(1, 10);
  });

  it('should sample inside the distribution: on the grid, in log range, valid choices', () => {
    const space = {
      q: { kind: 'float', low: 0, high: 1, step: 0.25 },
      lr: { kind: 'float', low: 1e-4, high: 1, log: true },
      k: { kind: 'int', low: 1, high: 100, log: true },
      c: { kind: 'categorical', choices: ['x', 'y'] },
    } as const;
    const observations = { q: Float64Array.of(0.25, 0.75), lr: Float64Array.of(0.01, 0.1), k: Float64Array.of(3, 50), c: Float64Array.of(0, 1) };
    const estimator = new ParzenEstimator(observations, space, { ...univariate, multivariate: true });
    const samples = estimator.sample(new SeededRandom(1), 200);
    for (let i = 0; i < 200; i++) {
      expect([0, 0.25, 0.5, 0.75, 1]).toContain(samples.q![i]);
      expect(samples.lr![i]).toBeGreaterThanOrEqual(1e-4);
      expect(samples.lr![i]).toBeLessThanOrEqual(1);
      expect(Number.isInteger(samples.k![i]) && samples.k![i]! >= 1 && samples.k![i]! <= 100).toBe(true);
      expect([0, 1]).toContain(samples.c![i]);
    }
    expect(Number.isFinite(estimator.logPdf(samples)[0])).toBe(true);
  });
});
