import { describe, expect, it } from 'vitest';
import { isValueInDistribution, parameterDistributionSchema, searchSpaceSchema, type ParameterDistribution } from './SearchSpace.js';

function problemsOf(distribution: unknown): string[] {
  const result = parameterDistributionSchema.safeParse(distribution);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('parameterDistributionSchema', () => {
  it('should accept Optuna-style distributions', () => {
    expect(problemsOf({ kind: 'float', low: 0, high: 0.7, step: 0.05 })).toEqual([]);
    expect(problemsOf({ kind: 'float', low: 1e-4, high: 1e-1, log: true })).toEqual([]);
    expect(problemsOf({ kind: 'int', low: 1, high: 64, log: true })).toEqual([]);
    expect(problemsOf({ kind: 'int', low: 8, high: 64, step: 8 })).toEqual([]);
    expect(problemsOf({ kind: 'categorical', choices: ['minmax', 'percentile', 'entropy'] })).toEqual([]);
    expect(problemsOf({ kind: 'categorical', choices: [true, false] })).toEqual([]);
    expect(problemsOf({ kind: 'categorical', choices: ['minmax', null] })).toEqual([]);
  });

  it('should apply Optuna’s rules on ranges, steps and log scales', () => {
    expect(problemsOf({ kind: 'float', low: 1, high: 0 })).toEqual(['high: expected high >= low (1)']);
    expect(problemsOf({ kind: 'float', low: 0, high: 1, log: true })).toEqual(['low: expected low > 0 on a log scale']);
    expect(problemsOf({ kind: 'float', low: 0.1, high: 1, step: 0.1, log: true })).toEqual([
      'step: expected no step on a log scale (use one or the other)',
    ]);
    expect(problemsOf({ kind: 'float', low: 0, high: 1, step: 0.3 })).toEqual(['step: expected a step that divides high - low (1)']);
    expect(problemsOf({ kind: 'int', low: 0, high: 10, step: 3 })).toEqual(['step: expected a step that divides high - low (10)']);
    expect(problemsOf({ kind: 'int', low: 0, high: 10, log: true })).toEqual(['low: expected low >= 1 on a log scale']);
    expect(problemsOf({ kind: 'int', low: 0.5, high: 10 })).toEqual(['low: expected an integer']);
    expect(problemsOf({ kind: 'categorical', choices: [] })).toEqual(['choices: expected at least one choice']);
    expect(problemsOf({ kind: 'categorical', choices: ['a', 'a'] })).toEqual(['choices: expected distinct choices']);
    expect(problemsOf({ kind: 'uniform', low: 0, high: 1 })).toHaveLength(1);
  });
});

describe('searchSpaceSchema', () => {
  it('should require unique parameter names', () => {
    const distribution: ParameterDistribution = { kind: 'float', low: 0, high: 0.5 };
    const result = searchSpaceSchema.safeParse([
      { name: 'ratio.conv1', distribution, layer: 'conv1' },
      { name: 'ratio.conv1', distribution, layer: 'conv2' },
    ]);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => [issue.path, issue.message])).toEqual([
      [[1, 'name'], 'expected unique names; "ratio.conv1" is repeated'],
    ]);
  });

  it('should accept layer features of numbers and strings and refuse other values', () => {
    const distribution: ParameterDistribution = { kind: 'float', low: 0, high: 0.7 };
    const features = { index: 0, opType: 'Conv', inChannels: 1, outChannels: 16, kernel: 9, stride: 1, macs: 103_680, params: 160 };
    expect(searchSpaceSchema.safeParse([{ name: 'ratio.conv1', distribution, layer: 'conv1', features }]).success).toBe(true);
    const result = searchSpaceSchema.safeParse([{ name: 'ratio.conv1', distribution, features: { macs: Number.NaN, shape: [1, 2] } }]);
    expect(result.error?.issues.map((issue) => issue.path)).toEqual([
      [0, 'features', 'macs'],
      [0, 'features', 'shape'],
    ]);
  });
});

describe('isValueInDistribution', () => {
  it('should check floats against range and step grid', () => {
    const ratio: ParameterDistribution = { kind: 'float', low: 0, high: 0.7, step: 0.05 };
    expect(isValueInDistribution(ratio, 0.35)).toBe(true);
    expect(isValueInDistribution(ratio, 0.1 + 0.2)).toBe(true); // 0.30000000000000004 is on the grid
    expect(isValueInDistribution(ratio, 0.7)).toBe(true);
    expect(isValueInDistribution(ratio, 0.33)).toBe(false);
    expect(isValueInDistribution(ratio, 0.75)).toBe(false);
    expect(isValueInDistribution(ratio, '0.35')).toBe(false);
    expect(isValueInDistribution({ kind: 'float', low: 1e-4, high: 1e-1, log: true }, 0.0123)).toBe(true);
    expect(isValueInDistribution({ kind: 'float', low: 0, high: 1 }, Number.NaN)).toBe(false);
  });

  it('should check integers against range and step', () => {
    const channels: ParameterDistribution = { kind: 'int', low: 8, high: 64, step: 8 };
    expect(isValueInDistribution(channels, 24)).toBe(true);
    expect(isValueInDistribution(channels, 20)).toBe(false);
    expect(isValueInDistribution(channels, 72)).toBe(false);
    expect(isValueInDistribution({ kind: 'int', low: 0, high: 3 }, 1.5)).toBe(false);
  });

  it('should check categorical values by identity', () => {
    const calibration: ParameterDistribution = { kind: 'categorical', choices: ['minmax', 'entropy', 4] };
    expect(isValueInDistribution(calibration, 'entropy')).toBe(true);
    expect(isValueInDistribution(calibration, 4)).toBe(true);
    expect(isValueInDistribution(calibration, '4')).toBe(false);
    expect(isValueInDistribution(calibration, null)).toBe(false);
    expect(isValueInDistribution({ kind: 'categorical', choices: ['minmax', null] }, null)).toBe(true);
  });
});
