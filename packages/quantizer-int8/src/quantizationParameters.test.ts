import { describe, expect, it } from 'vitest';
import {
  activationParameters,
  dequantizeValue,
  quantizeValue,
  roundHalfToEven,
  symmetricWeightScale,
} from './quantizationParameters.js';

describe('activationParameters', () => {
  it('should map [0, 6] onto uint8 with zero point 0', () => {
    const p = activationParameters({ min: 0, max: 6 }, 'uint8');
    expect(p.scale).toBeCloseTo(6 / 255, 7);
    expect(p.zeroPoint).toBe(0);
  });

  it('should put the zero point where 0 falls in an asymmetric range', () => {
    // [-1, 3]: scale 4/255, zp = round(0 + 1 / (4/255)) = round(63.75) = 64.
    const p = activationParameters({ min: -1, max: 3 }, 'uint8');
    expect(p.scale).toBeCloseTo(4 / 255, 7);
    expect(p.zeroPoint).toBe(64);
    // int8: zp = round(-128 + 63.75) = -64.
    expect(activationParameters({ min: -1, max: 3 }, 'int8').zeroPoint).toBe(-64);
  });

  it('should widen a range that excludes 0 so that 0 stays exact', () => {
    const p = activationParameters({ min: 2, max: 5 }, 'uint8');
    expect(p.scale).toBeCloseTo(5 / 255, 7);
    expect(p.zeroPoint).toBe(0);
    expect(dequantizeValue(quantizeValue(0, p, 0, 255), p)).toBe(0);
  });

  it('should give scale 1 to an all-zero tensor, with the zero point at the bottom so a folded ReLU still clips', () => {
    expect(activationParameters({ min: 0, max: 0 }, 'uint8')).toEqual({ scale: 1, zeroPoint: 0 });
    const int8 = activationParameters({ min: 0, max: 0 }, 'int8');
    expect(int8).toEqual({ scale: 1, zeroPoint: -128 });
    // A dead ReLU channel: its pre-activation -5 must still come out as 0.
    expect(dequantizeValue(quantizeValue(-5, int8, -128, 127), int8)).toBe(0);
  });

  it('should never give a zero or denormal scale for a range narrower than float32 can scale', () => {
    for (const range of [{ min: 0, max: 1e-43 }, { min: -1e-40, max: 1e-40 }, { min: -3e-39, max: 0 }]) {
      for (const type of ['uint8', 'int8'] as const) {
        const p = activationParameters(range, type);
        expect(p.scale, `${JSON.stringify(range)} ${type}`).toBe(1);
        expect(Number.isInteger(p.zeroPoint)).toBe(true);
        expect(dequantizeValue(quantizeValue(0, p, type === 'uint8' ? 0 : -128, type === 'uint8' ? 255 : 127), p)).toBe(0);
      }
    }
    expect(activationParameters({ min: -3e-39, max: 0 }, 'uint8').zeroPoint).toBe(255);
  });

  it('should refuse a non-finite or inverted range', () => {
    expect(() => activationParameters({ min: Number.NaN, max: 1 }, 'uint8')).toThrow(/Invalid calibration range/);
    expect(() => activationParameters({ min: 2, max: 1 }, 'uint8')).toThrow(/Invalid calibration range/);
  });
});

describe('symmetricWeightScale', () => {
  it('should be max|w| / 127', () => {
    expect(symmetricWeightScale(1.27)).toBeCloseTo(0.01, 7);
    expect(symmetricWeightScale(0)).toBe(1);
  });

  it('should give scale 1 where max|w| / 127 is not a normal float32 (it would round to 0 or a denormal)', () => {
    expect(symmetricWeightScale(1e-43)).toBe(1);
    expect(symmetricWeightScale(2 ** -110)).toBe(Math.fround(2 ** -110 / 127));
  });
});

describe('quantizeValue', () => {
  it('should round half to even and saturate', () => {
    const p = { scale: 0.5, zeroPoint: 10 };
    expect(quantizeValue(1.25, p, 0, 255)).toBe(12); // 2.5 -> 2
    expect(quantizeValue(1.75, p, 0, 255)).toBe(14); // 3.5 -> 4
    expect(quantizeValue(-100, p, 0, 255)).toBe(0);
    expect(quantizeValue(1000, p, 0, 255)).toBe(255);
    expect(roundHalfToEven(-2.5)).toBe(-2);
    expect(roundHalfToEven(-1.5)).toBe(-2);
  });
});
