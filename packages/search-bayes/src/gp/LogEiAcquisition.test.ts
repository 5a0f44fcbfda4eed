import { describe, expect, it } from 'vitest';
import { SeededRandom } from '@open-autoglm/core';
import { GaussianProcess } from './GaussianProcess.js';
import { LogEiAcquisition } from './LogEiAcquisition.js';

function trainingData(random: SeededRandom, n: number, isCategorical: boolean[]): { x: Float64Array; y: Float64Array; isCategorical: boolean[] } {
  const dim = isCategorical.length;
  const x = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) x[i * dim + k] = isCategorical[k] === true ? random.nextInt(3) : random.nextFloat();
  const y = Float64Array.from({ length: n }, (_, i) => Math.sin(5 * (x[i * dim] as number)) + Math.cos(3 * (x[i * dim + 1] as number)) + 0.2 * (x[i * dim + dim - 1] as number));
  return { x, y, isCategorical };
}

const params = { inverseSquaredLengthscales: Float64Array.from([2, 0.7, 1.3]), kernelScale: 1.4, noiseVar: 1e-4 };

describe('LogEiAcquisition', () => {
  it('should match central finite differences of its value, with and without constraints', () => {
    const random = new SeededRandom(3);
    const data = trainingData(random, 15, [false, false, true]);
    const gp = new GaussianProcess(data, params);
    const constraintGp = new GaussianProcess({ ...data, y: data.y.map((v) => -v + 0.3) }, { ...params, kernelScale: 0.8 });
    const acquisitions = [
      new LogEiAcquisition(3, { gp, threshold: 1.2 }),
      new LogEiAcquisition(3, { gp, threshold: 1.2 }, [{ gp: constraintGp, threshold: -0.4 }]),
      new LogEiAcquisition(3, undefined, [{ gp: constraintGp, threshold: -0.4 }]),
    ];
    for (const acquisition of acquisitions) {
      for (let trial = 0; trial < 5; trial++) {
        const x = Float64Array.from([random.nextFloat(), random.nextFloat(), random.nextInt(3)]);
        const gradient = new Float64Array(3);
        const value = acquisition.valueAndGradient(x, gradient);
        expect(value).toBeCloseTo(acquisition.value(x), 12);
        for (let k = 0; k < 2; k++) {
          const h = 1e-6;
          const plus = Float64Array.from(x);
          const minus = Float64Array.from(x);
          plus[k] = (plus[k] as number) + h;
          minus[k] = (minus[k] as number) - h;
          const numeric = (acquisition.value(plus) - acquisition.value(minus)) / (2 * h);
          expect(Math.abs((gradient[k] as number) - numeric)).toBeLessThan(1e-5 * Math.max(1, Math.abs(numeric)));
        }
        expect(gradient[2]).toBe(0);
      }
    }
  });

  it('should stay finite and ordered far below the incumbent, where EI underflows', () => {
    const random = new SeededRandom(4);
    const data = trainingData(random, 10, [false, false, false]);
    const gp = new GaussianProcess(data, { ...params, noiseVar: 1e-6 });
    const x = Float64Array.from([0.5, 0.5, 0.5]);
    const far = new LogEiAcquisition(3, { gp, threshold: 1e4 }).value(x);
    const farther = new LogEiAcquisition(3, { gp, threshold: 1e5 }).value(x);
    expect(Number.isFinite(far)).toBe(true);
    expect(Number.isFinite(farther)).toBe(true);
    expect(farther).toBeLessThan(far);
  });
});
