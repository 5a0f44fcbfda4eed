import { describe, expect, it } from 'vitest';
import { erf, erfc } from './erf.js';

// Reference values from CPython's math.erf / math.erfc (correctly rounded libm).
const references: readonly [number, number, number][] = [
  [1e-10, 1.1283791670955126e-10, 0.999999999887162],
  [0.1, 0.1124629160182849, 0.8875370839817152],
  [0.5, 0.5204998778130465, 0.4795001221869535],
  [0.84375, 0.7672256612323416, 0.23277433876765835],
  [1, 0.8427007929497149, 0.15729920705028513],
  [1.25, 0.9229001282564582, 0.07709987174354177],
  [2, 0.9953222650189527, 0.004677734981047265],
  [3, 0.9999779095030014, 2.2090496998585438e-5],
  [5, 0.9999999999984626, 1.5374597944280351e-12],
  [-0.3, -0.3286267594591274, 1.3286267594591274],
  [-2.5, -0.999593047982555, 1.999593047982555],
];

describe('erf', () => {
  it('should match libm to a few ulps across every branch', () => {
    for (const [x, expectedErf, expectedErfc] of references) {
      expect(erf(x)).toBeCloseTo(expectedErf, 15);
      expect(Math.abs(erfc(x) - expectedErfc) / expectedErfc).toBeLessThan(1e-14);
    }
  });

  it('should keep erfc relatively accurate deep in the tail', () => {
    for (const [x, expected] of [
      [10, 2.088487583762545e-45],
      [20, 5.3958656116079005e-176],
      [26, 5.663192408856143e-296],
    ] as const) {
      expect(Math.abs(erfc(x) - expected) / expected).toBeLessThan(1e-13);
    }
    expect(erfc(30)).toBe(0);
    expect(erfc(-30)).toBe(2);
    expect(erf(Number.NaN)).toBeNaN();
  });
});
