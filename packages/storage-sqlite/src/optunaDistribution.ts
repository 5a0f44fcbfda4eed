import type { CategoricalChoice, JsonValue, ParameterDistribution, ParameterValue } from '@open-autoglm/core';

import { formatPythonFloat, formatPythonJson, parsePythonJson } from './pythonJson.js';

/**
 * Distributions as Optuna's RDB schema stores them in `trial_params.distribution_json`
 * (`distribution_to_json`: `{"name": <class>, "attributes": <fields in declaration order>}`), and
 * parameter values in their internal representation (`param_value`, a float: the number itself,
 * or the index of the choice for categorical parameters).
 */

/** The JSON text Optuna 3.1 writes for `distribution`, field for field. */
export function distributionToOptunaJson(distribution: ParameterDistribution): string {
  switch (distribution.kind) {
    case 'float': {
      const step = distribution.step === undefined ? 'null' : formatPythonFloat(distribution.step);
      const attributes = `"step": ${step}, "low": ${formatPythonFloat(distribution.low)}, "high": ${formatPythonFloat(distribution.high)}, "log": ${String(distribution.log === true)}`;
      return `{"name": "FloatDistribution", "attributes": {${attributes}}}`;
    }
    case 'int': {
      const attributes = `"log": ${String(distribution.log === true)}, "step": ${String(distribution.step ?? 1)}, "low": ${String(distribution.low)}, "high": ${String(distribution.high)}`;
      return `{"name": "IntDistribution", "attributes": {${attributes}}}`;
    }
    case 'categorical':
      return `{"name": "CategoricalDistribution", "attributes": {"choices": ${formatPythonJson(distribution.choices)}}}`;
  }
}

/**
 * Reads a stored distribution: Optuna 3's classes, the classes of Optuna 2 that 3.x still reads
 * (`UniformDistribution`, `LogUniformDistribution`, `DiscreteUniformDistribution`,
 * `IntUniformDistribution`, `IntLogUniformDistribution`) and the abbreviated `{"type": ...}` form.
 * Defaults are left out (`step` of 1 for ints, `log: false`), so equal distributions compare equal.
 * Throws `SyntaxError` or `TypeError` for anything else; the storage names the file and row.
 */
export function distributionFromOptunaJson(text: string): ParameterDistribution {
  const parsed = parsePythonJson(text);
  const record = asRecord(parsed, 'a distribution object');
  if ('name' in record) {
    const attributes = asRecord(record.attributes ?? null, 'an "attributes" object');
    const low = (): number => numberField(attributes, 'low');
    const high = (): number => numberField(attributes, 'high');
    switch (record.name) {
      case 'FloatDistribution':
        return floatDistribution(low(), high(), optionalNumberField(attributes, 'step'), attributes.log === true);
      case 'IntDistribution':
        return intDistribution(low(), high(), optionalNumberField(attributes, 'step'), attributes.log === true);
      case 'CategoricalDistribution':
        return categoricalDistribution(attributes.choices);
      case 'UniformDistribution':
        return floatDistribution(low(), high(), undefined, false);
      case 'LogUniformDistribution':
        return floatDistribution(low(), high(), undefined, true);
      case 'DiscreteUniformDistribution':
        return floatDistribution(low(), high(), numberField(attributes, 'q'), false);
      case 'IntUniformDistribution':
        return intDistribution(low(), high(), optionalNumberField(attributes, 'step'), false);
      case 'IntLogUniformDistribution':
        // Optuna ignores the deprecated step of log-int distributions.
        return intDistribution(low(), high(), undefined, true);
      default:
        throw new TypeError(`unknown distribution class ${JSON.stringify(record.name)}`);
    }
  }
  switch (record.type) {
    case 'categorical':
      return categoricalDistribution(record.choices);
    case 'float':
      return floatDistribution(numberField(record, 'low'), numberField(record, 'high'), optionalNumberField(record, 'step'), record.log === true);
    case 'int':
      return intDistribution(numberField(record, 'low'), numberField(record, 'high'), optionalNumberField(record, 'step'), record.log === true);
    default:
      throw new TypeError(`unknown distribution type ${JSON.stringify(record.type ?? null)}`);
  }
}

/**
 * The value stored in `trial_params.param_value` for `value`: the number for float and int
 * parameters, the index of the choice for categorical ones. Throws `RangeError` for a value that is
 * not one of the choices.
 */
export function toOptunaInternalValue(distribution: ParameterDistribution, value: ParameterValue): number {
  if (distribution.kind !== 'categorical') {
    if (typeof value !== 'number') throw new RangeError(`expected a number for a ${distribution.kind} parameter, got ${JSON.stringify(value)}`);
    return value;
  }
  const index = distribution.choices.findIndex((choice) => choice === value);
  if (index < 0) throw new RangeError(`${JSON.stringify(value)} is not one of the choices ${JSON.stringify(distribution.choices)}`);
  return index;
}

/** The parameter value a stored `param_value` stands for (the choice itself for categorical parameters). */
export function fromOptunaInternalValue(distribution: ParameterDistribution, internal: number): ParameterValue {
  switch (distribution.kind) {
    case 'float':
      return internal;
    case 'int':
      // Optuna's IntDistribution.to_external_repr truncates with int().
      return Math.trunc(internal);
    case 'categorical': {
      const choice = distribution.choices[Math.trunc(internal)];
      if (choice === undefined) throw new RangeError(`choice index ${internal} is outside the ${distribution.choices.length} choices`);
      return choice;
    }
  }
}

function floatDistribution(low: number, high: number, step: number | undefined, log: boolean): ParameterDistribution {
  return { kind: 'float', low, high, ...(step === undefined ? {} : { step }), ...(log ? { log } : {}) };
}

function intDistribution(low: number, high: number, step: number | undefined, log: boolean): ParameterDistribution {
  return { kind: 'int', low, high, ...(step === undefined || step === 1 ? {} : { step }), ...(log ? { log } : {}) };
}

function categoricalDistribution(choices: JsonValue | undefined): ParameterDistribution {
  if (!Array.isArray(choices) || choices.length === 0) throw new TypeError('expected a non-empty "choices" list');
  for (const choice of choices as readonly JsonValue[]) {
    // None is a valid Optuna choice; objects and lists are not.
    if (choice !== null && typeof choice === 'object') throw new TypeError(`unsupported categorical choice ${JSON.stringify(choice)}`);
  }
  return { kind: 'categorical', choices: choices as readonly CategoricalChoice[] };
}

function asRecord(value: JsonValue, what: string): Readonly<Record<string, JsonValue>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`expected ${what}`);
  return value as Readonly<Record<string, JsonValue>>;
}

function numberField(record: Readonly<Record<string, JsonValue>>, key: string): number {
  const value = record[key];
  if (typeof value !== 'number') throw new TypeError(`expected a number in "${key}"`);
  return value;
}

function optionalNumberField(record: Readonly<Record<string, JsonValue>>, key: string): number | undefined {
  const value = record[key];
  return value === undefined || value === null ? undefined : numberField(record, key);
}
