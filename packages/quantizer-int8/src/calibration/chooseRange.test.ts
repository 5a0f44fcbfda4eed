import { describe, expect, it } from 'vitest';
import { entropyThreshold, mseRange, percentileThreshold } from './chooseRange.js';
import { Histogram } from './Histogram.js';
import { activationParameters, dequantizeValue, quantizeValue } from '../quantizationParameters.js';

/** Deterministic standard normal samples (Box-Muller over a fixed LCG). */
function normalSamples(count: number): Float32Array {
  const out = new Float32Array(count);
  let state = 12345;
  const uniform = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return (state + 1) / (2 ** 31 + 1);
  };
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

describe('Histogram', () => {
  it('should count values into fixed bins and clamp the ends', () => {
    const h = new Histogram(0, 4, 4);
    h.add([0, 0.5, 1, 3.99, 4, 10, -1]);
    expect(Array.from(h.counts)).toEqual([3, 1, 0, 3]);
    expect(h.total).toBe(7);
    const magnitudes = new Histogram(0, 2, 2);
    magnitudes.add([-1.5, 0.5, 1.5], true);
    expect(Array.from(magnitudes.counts)).toEqual([1, 2]);
  });
});

describe('percentileThreshold', () => {
  it('should return the upper edge of the bin reaching the percentile', () => {
    const h = new Histogram(0, 1000, 1000);
    h.add(Float64Array.from({ length: 1000 }, (_, i) => i + 0.5));
    expect(percentileThreshold(h, 99)).toBe(990);
    expect(percentileThreshold(h, 100)).toBe(1000);
  });
});

describe('entropyThreshold', () => {
  it('should clip a few far outliers of a normal distribution', () => {
    const values = normalSamples(200_000);
    values[0] = 40; // one outlier stretches min/max 10x
    const h = new Histogram(0, 40, 2048);
    h.add(values, true);
    const threshold = entropyThreshold(h, 128);
    expect(threshold).toBeGreaterThan(2.5);
    expect(threshold).toBeLessThan(8);
  });

  it('should not let a spike of exact zeros (ReLU outputs) drag the threshold down when told to skip it', () => {
    const h = new Histogram(0, 1, 2048);
    h.add(new Float64Array(200_000));
    h.add(Float64Array.from({ length: 2048 * 20 }, (_, i) => (i + 0.5) / (2048 * 20)));
    expect(entropyThreshold(h, 256, true)).toBeGreaterThan(0.95);
    expect(entropyThreshold(h, 256, true)).toBeGreaterThan(entropyThreshold(h, 256));
  });

  it('should keep the whole range of a uniform distribution', () => {
    const h = new Histogram(0, 1, 2048);
    h.add(Float64Array.from({ length: 2048 * 20 }, (_, i) => (i + 0.5) / (2048 * 20)));
    expect(entropyThreshold(h, 128)).toBeGreaterThan(0.95);
  });
});

describe('mseRange', () => {
  it('should clip a lone outlier when that lowers the error measured on the raw values', () => {
    const values = Float64Array.from({ length: 100_000 }, (_, i) => i / 100_000);
    const h = new Histogram(0, 100, 2048);
    h.add(values);
    h.add([100]);
    const range = mseRange(h, { min: 0, max: 100 }, 'uint8');
    expect(range.min).toBe(0);
    expect(range.max).toBeLessThan(100);
    const rawError = (r: { min: number; max: number }): number => {
      const p = activationParameters(r, 'uint8');
      let sum = (100 - dequantizeValue(quantizeValue(100, p, 0, 255), p)) ** 2;
      for (const x of values) sum += (x - dequantizeValue(quantizeValue(x, p, 0, 255), p)) ** 2;
      return sum;
    };
    expect(rawError(range)).toBeLessThan(rawError({ min: 0, max: 100 }));
  });

  it('should keep the full range when nothing is an outlier', () => {
    const h = new Histogram(-1, 1, 2048);
    h.add(Float64Array.from({ length: 20_000 }, (_, i) => -1 + (2 * i) / 20_000));
    const range = mseRange(h, { min: -1, max: 1 }, 'uint8');
    expect(range.max).toBeGreaterThan(0.95);
  });
});
