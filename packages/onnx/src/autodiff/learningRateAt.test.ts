import { ConfigError } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { learningRateAt } from './learningRateAt.js';

describe('learningRateAt', () => {
  it('should keep a constant rate', () => {
    expect([1, 2, 1000].map((step) => learningRateAt(step, { kind: 'constant', lr: 0.1 }))).toEqual([0.1, 0.1, 0.1]);
  });

  it('should decay by gamma every stepSize updates, as StepLR', () => {
    const schedule = { kind: 'step', lr: 1, stepSize: 3, gamma: 0.5 } as const;
    // Updates 1-3 use lr, 4-6 lr/2, 7 lr/4.
    expect([1, 3, 4, 6, 7].map((step) => learningRateAt(step, schedule))).toEqual([1, 1, 0.5, 0.5, 0.25]);
    expect(learningRateAt(11, { kind: 'step', lr: 1, stepSize: 10 })).toBeCloseTo(0.1, 12);
  });

  it('should follow the cosine curve of CosineAnnealingLR and hold its minimum after the end', () => {
    const schedule = { kind: 'cosine', lr: 0.1, totalSteps: 4, minLr: 0.01 } as const;
    // t = step - 1 in 0..3: 0.01 + 0.09 (1 + cos(pi t / 4)) / 2
    const expected = [0.1, 0.01 + 0.045 * (1 + Math.SQRT1_2), 0.055, 0.01 + 0.045 * (1 - Math.SQRT1_2), 0.01, 0.01];
    [1, 2, 3, 4, 5, 9].forEach((step, i) => expect(learningRateAt(step, schedule)).toBeCloseTo(expected[i] as number, 12));
  });

  it('should warm up linearly, then run the schedule from the end of the warm-up', () => {
    const schedule = { kind: 'cosine', lr: 1, totalSteps: 6, warmupSteps: 2 } as const;
    expect(learningRateAt(1, schedule)).toBe(0.5);
    expect(learningRateAt(2, schedule)).toBe(1);
    // Cosine over the 4 updates after the warm-up: t = 0, 1, 2, 3.
    expect(learningRateAt(3, schedule)).toBeCloseTo(1, 12);
    expect(learningRateAt(5, schedule)).toBeCloseTo(0.5, 12);
    expect(learningRateAt(7, schedule)).toBe(0);
    expect(learningRateAt(4, { kind: 'constant', lr: 0.3, warmupSteps: 4 })).toBeCloseTo(0.3, 12);
    expect(learningRateAt(1, { kind: 'constant', lr: 0.3, warmupSteps: 4 })).toBeCloseTo(0.075, 12);
  });

  it('should reject invalid steps and schedules with a ConfigError', () => {
    expect(() => learningRateAt(0, { kind: 'constant', lr: 0.1 })).toThrow(ConfigError);
    expect(() => learningRateAt(1.5, { kind: 'constant', lr: 0.1 })).toThrow(/1-based/);
    expect(() => learningRateAt(1, { kind: 'constant', lr: -1 })).toThrow(/lr -1/);
    expect(() => learningRateAt(1, { kind: 'step', lr: 1, stepSize: 0 })).toThrow(/stepSize 0/);
    expect(() => learningRateAt(1, { kind: 'cosine', lr: 1, totalSteps: 2, warmupSteps: 2 })).toThrow(/totalSteps 2/);
  });
});
