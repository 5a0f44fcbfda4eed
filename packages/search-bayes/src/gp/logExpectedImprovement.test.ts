import { describe, expect, it } from 'vitest';
import { logEi, standardLogEi, standardLogEiDerivative } from './logExpectedImprovement.js';

const logSqrtTwoPi = 0.5 * Math.log(2 * Math.PI);

/**
 * log E[max(0, Z + z)] by direct quadrature, independent of the implementation:
 * E = phi(z) * I(z) with I(z) = int_0^inf t exp(-t^2/2 + z t) dt (substituting u = t - z), so
 * that log phi(z) = -z^2/2 - log sqrt(2 pi) is exact and I(z) is integrated by composite Simpson
 * on a grid fine enough for its scale (1/|z| for very negative z).
 */
function logEiByQuadrature(z: number): number {
  const scale = z < -1 ? 1 / -z : 1;
  const upper = Math.max(0, z) + 40 * scale + 12;
  const intervals = 200_000;
  const h = upper / intervals;
  const integrand = (t: number): number => t * Math.exp(-0.5 * t * t + z * t);
  let sum = integrand(0) + integrand(upper);
  for (let i = 1; i < intervals; i++) sum += (i % 2 === 1 ? 4 : 2) * integrand(i * h);
  return -0.5 * z * z - logSqrtTwoPi + Math.log((sum * h) / 3);
}

describe('standardLogEi', () => {
  it('should match numerical integration in all three regimes', () => {
    for (const z of [3, 1, 0, -0.5, -1, -2, -5, -30, -200, -999, -1001, -5000]) {
      const expected = logEiByQuadrature(z);
      expect(Math.abs(standardLogEi(z) - expected)).toBeLessThan(1e-9 * Math.max(1, Math.abs(expected)));
    }
  });

  it('should have the derivative of central finite differences, across the regime boundaries', () => {
    for (const z of [2, 0.3, -0.999, -1.001, -7, -40, -999.5, -1000.5, -3000]) {
      const h = 1e-5 * Math.max(1, Math.abs(z));
      const numeric = (standardLogEi(z + h) - standardLogEi(z - h)) / (2 * h);
      expect(Math.abs(standardLogEiDerivative(z) - numeric)).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
    }
  });
});

describe('logEi', () => {
  it('should scale the standard form by sigma and differentiate in mean and variance', () => {
    const [mean, variance, threshold] = [0.3, 0.49, 1.1];
    const result = logEi(mean, variance, threshold);
    expect(result.value).toBeCloseTo(Math.log(0.7) + standardLogEi((mean - threshold) / 0.7), 14);
    const h = 1e-6;
    const dMean = (logEi(mean + h, variance, threshold).value - logEi(mean - h, variance, threshold).value) / (2 * h);
    const dVariance = (logEi(mean, variance + h, threshold).value - logEi(mean, variance - h, threshold).value) / (2 * h);
    expect(result.dMean).toBeCloseTo(dMean, 7);
    expect(result.dVariance).toBeCloseTo(dVariance, 7);
  });
});
