import { describe, expect, it } from 'vitest';
import { logGaussMass, logNdtr, ndtr, truncatedNormalLogPdf, truncatedNormalQuantile } from './truncatedNormal.js';

// References from scipy 1.17 (scipy.special.log_ndtr, scipy.stats.truncnorm).
describe('logNdtr', () => {
  it('should match scipy in the body and far in both tails', () => {
    expect(logNdtr(-5)).toBeCloseTo(-15.064998393988727, 12);
    expect(logNdtr(-40) / -804.6084420137539).toBeCloseTo(1, 14);
    expect(logNdtr(-100) / -5005.524208694205).toBeCloseTo(1, 14);
    expect(logNdtr(8) / -6.220960574271742e-16).toBeCloseTo(1, 10);
    expect(ndtr(0)).toBe(0.5);
  });
});

describe('logGaussMass', () => {
  it('should give the log of Phi(b) - Phi(a) in the centre and in both tails', () => {
    expect(Math.exp(logGaussMass(-1, 1))).toBeCloseTo(0.6826894921370859, 14);
    // Far in the right tail, where 1 - Phi rounds to 0 in a naive difference.
    expect(logGaussMass(40, 41)).toBeCloseTo(logNdtr(-40) + Math.log1p(-Math.exp(logNdtr(-41) - logNdtr(-40))), 10);
    expect(logGaussMass(-41, -40)).toBeCloseTo(logGaussMass(40, 41), 12);
  });
});

describe('truncatedNormalLogPdf', () => {
  it('should match scipy.stats.truncnorm.logpdf, including a component far outside the interval', () => {
    expect(truncatedNormalLogPdf(0.7, 0.3, 0.2, 0, 1)).toBeCloseTo(-1.2401078511051156, 12);
    expect(truncatedNormalLogPdf(0.01, -5, 0.5, 0, 1)).toBeCloseTo(2.805293798100889, 9);
    expect(truncatedNormalLogPdf(1.5, 0.3, 0.2, 0, 1)).toBe(-Infinity);
  });

  it('should integrate to 1 over its interval (Simpson, float64)', () => {
    const n = 2000;
    const [low, high] = [-1, 2.5];
    const h = (high - low) / n;
    let sum = 0;
    for (let i = 0; i <= n; i++) {
      const weight = i === 0 || i === n ? 1 : i % 2 === 1 ? 4 : 2;
      sum += weight * Math.exp(truncatedNormalLogPdf(low + i * h, 0.4, 0.7, low, high));
    }
    expect((sum * h) / 3).toBeCloseTo(1, 10);
  });
});

describe('truncatedNormalQuantile', () => {
  it('should match scipy.stats.truncnorm.ppf and stay inside the interval in the tails', () => {
    expect(0.3 + 0.2 * truncatedNormalQuantile(0.25, -1.5, 3.5)).toBeCloseTo(0.19514707203560266, 12);
    expect(-5 + 0.5 * truncatedNormalQuantile(0.5, 10, 12)).toBeCloseTo(0.03420591802924733, 10);
    for (const q of [1e-12, 0.3, 0.999999]) {
      const x = truncatedNormalQuantile(q, 10, 12);
      expect(x).toBeGreaterThanOrEqual(10);
      expect(x).toBeLessThanOrEqual(12);
    }
  });
});
