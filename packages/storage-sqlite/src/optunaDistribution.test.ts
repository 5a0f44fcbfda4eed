import type { ParameterDistribution } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';

import { distributionFromOptunaJson, distributionToOptunaJson, fromOptunaInternalValue, toOptunaInternalValue } from './optunaDistribution.js';

// Rows written by Python Optuna 3.1.0 (trial_params.distribution_json), copied from a study file.
const writtenByOptuna: ReadonlyArray<readonly [ParameterDistribution, string]> = [
  [{ kind: 'float', low: -1, high: 1 }, '{"name": "FloatDistribution", "attributes": {"step": null, "low": -1.0, "high": 1.0, "log": false}}'],
  [{ kind: 'float', low: 0, high: 1, step: 0.25 }, '{"name": "FloatDistribution", "attributes": {"step": 0.25, "low": 0.0, "high": 1.0, "log": false}}'],
  [{ kind: 'float', low: 0.001, high: 1, log: true }, '{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 1.0, "log": true}}'],
  [{ kind: 'int', low: 0, high: 10 }, '{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 0, "high": 10}}'],
  [{ kind: 'int', low: 0, high: 10, step: 2 }, '{"name": "IntDistribution", "attributes": {"log": false, "step": 2, "low": 0, "high": 10}}'],
  [{ kind: 'int', low: 1, high: 64, log: true }, '{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 1, "high": 64}}'],
  [{ kind: 'categorical', choices: ['a', 'b', 1, 2.5, true] }, '{"name": "CategoricalDistribution", "attributes": {"choices": ["a", "b", 1, 2.5, true]}}'],
  [{ kind: 'categorical', choices: ['none', null] }, '{"name": "CategoricalDistribution", "attributes": {"choices": ["none", null]}}'],
];

describe('distributionToOptunaJson', () => {
  it('should write the text Optuna 3.1 writes, byte for byte', () => {
    for (const [distribution, json] of writtenByOptuna) expect(distributionToOptunaJson(distribution)).toBe(json);
  });
});

describe('distributionFromOptunaJson', () => {
  it('should read what Optuna 3.1 writes', () => {
    for (const [distribution, json] of writtenByOptuna) expect(distributionFromOptunaJson(json)).toEqual(distribution);
  });

  it('should read the Optuna 2 classes that Optuna 3 still reads', () => {
    const legacy: ReadonlyArray<readonly [string, ParameterDistribution]> = [
      ['{"name": "UniformDistribution", "attributes": {"low": 0.0, "high": 2.0}}', { kind: 'float', low: 0, high: 2 }],
      ['{"name": "LogUniformDistribution", "attributes": {"low": 0.1, "high": 2.0}}', { kind: 'float', low: 0.1, high: 2, log: true }],
      ['{"name": "DiscreteUniformDistribution", "attributes": {"low": 0.0, "high": 2.0, "q": 0.5}}', { kind: 'float', low: 0, high: 2, step: 0.5 }],
      ['{"name": "IntUniformDistribution", "attributes": {"low": 0, "high": 8, "step": 2}}', { kind: 'int', low: 0, high: 8, step: 2 }],
      ['{"name": "IntLogUniformDistribution", "attributes": {"low": 1, "high": 8, "step": 1}}', { kind: 'int', low: 1, high: 8, log: true }],
      ['{"type": "float", "low": 0, "high": 1, "step": 0.5}', { kind: 'float', low: 0, high: 1, step: 0.5 }],
      ['{"type": "categorical", "choices": ["x", null]}', { kind: 'categorical', choices: ['x', null] }],
    ];
    for (const [json, distribution] of legacy) expect(distributionFromOptunaJson(json)).toEqual(distribution);
  });

  it('should reject unknown classes and malformed attributes', () => {
    expect(() => distributionFromOptunaJson('{"name": "BetaDistribution", "attributes": {}}')).toThrow(/unknown distribution class "BetaDistribution"/);
    expect(() => distributionFromOptunaJson('{"name": "FloatDistribution", "attributes": {"low": "0"}}')).toThrow(/"low"/);
    expect(() => distributionFromOptunaJson('{"name": "CategoricalDistribution", "attributes": {"choices": []}}')).toThrow(/choices/);
    expect(() => distributionFromOptunaJson('[1]')).toThrow(/distribution object/);
  });
});

describe('toOptunaInternalValue', () => {
  const choices: ParameterDistribution = { kind: 'categorical', choices: ['relu', 3, true, false] };

  it('should store categorical values as the index of the choice, numbers as themselves', () => {
    expect([toOptunaInternalValue(choices, 'relu'), toOptunaInternalValue(choices, 3), toOptunaInternalValue(choices, false)]).toEqual([0, 1, 3]);
    expect(toOptunaInternalValue({ kind: 'float', low: 0, high: 1 }, 0.25)).toBe(0.25);
    expect(fromOptunaInternalValue(choices, 2)).toBe(true);
    expect(fromOptunaInternalValue({ kind: 'int', low: 0, high: 9 }, 4)).toBe(4);
  });

  it('should refuse a value that is not a choice, and an index outside the choices', () => {
    expect(() => toOptunaInternalValue(choices, 'gelu')).toThrow(RangeError);
    expect(() => toOptunaInternalValue({ kind: 'int', low: 0, high: 1 }, 'x')).toThrow(RangeError);
    expect(() => fromOptunaInternalValue(choices, 4)).toThrow(/outside the 4 choices/);
  });
});
