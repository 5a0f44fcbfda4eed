import { parameterDistributionSchema, type CategoricalChoice, type ParameterDistribution, type ParameterValue } from '../contracts/SearchSpace.js';
import { ConfigError } from '../errors/errors.js';

/**
 * Facts about parameter distributions the study and the samplers share: validation with one
 * clear message, Optuna's internal representation (a number; a categorical value is its choice
 * index), and equality.
 */

function describe(name: string, distribution: ParameterDistribution): string {
  if (distribution.kind === 'categorical') return `parameter "${name}" (categorical ${JSON.stringify(distribution.choices)})`;
  const options = [distribution.step === undefined ? '' : `, step ${distribution.step}`, distribution.log === true ? ', log' : ''].join('');
  return `parameter "${name}" (${distribution.kind} in [${distribution.low}, ${distribution.high}]${options})`;
}

/**
 * Throws one `ConfigError` naming the parameter when `distribution` is not valid, by core's
 * rules (Optuna's): low <= high, a log scale needs low > 0 and no step, a step divides the range,
 * categorical choices are distinct.
 */
export function checkDistribution(name: string, distribution: ParameterDistribution): void {
  if (typeof name !== 'string' || name.length === 0) throw new ConfigError('Cannot suggest a parameter without a name: give a non-empty name.');
  const result = parameterDistributionSchema.safeParse(distribution);
  if (result.success) return;
  const problems = result.error.issues.map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message));
  throw new ConfigError(`Cannot suggest ${describe(name, distribution)}: ${problems.join('; ')}. Fix the bounds or options of this suggestion.`);
}

/** True when the two distributions are the same (kind, bounds, step, log, choices in order). */
export function sameDistribution(a: ParameterDistribution, b: ParameterDistribution): boolean {
  if (a.kind === 'categorical' || b.kind === 'categorical') {
    if (a.kind !== 'categorical' || b.kind !== 'categorical') return false;
    return a.choices.length === b.choices.length && a.choices.every((choice, i) => Object.is(choice, b.choices[i]));
  }
  const step = (d: ParameterDistribution & { kind: 'int' | 'float' }): number | undefined => (d.kind === 'int' ? (d.step ?? 1) : d.step);
  return a.kind === b.kind && a.low === b.low && a.high === b.high && step(a) === step(b) && (a.log === true) === (b.log === true);
}

/**
 * True when two distributions of one name may coexist in a study (Optuna's compatibility rule):
 * the same kind, and for categorical parameters the same choices. Ranges may change from trial
 * to trial (a dynamic search space).
 */
export function compatibleDistributions(a: ParameterDistribution, b: ParameterDistribution): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind !== 'categorical' || sameDistribution(a, b);
}

/** True when the distribution can produce only one value. */
export function isSingleDistribution(distribution: ParameterDistribution): boolean {
  if (distribution.kind === 'categorical') return distribution.choices.length === 1;
  if (distribution.low === distribution.high) return true;
  return distribution.step !== undefined && distribution.high - distribution.low < distribution.step;
}

/** Optuna's internal representation: the number itself, or the index of a categorical choice. */
export function toInternalRepr(distribution: ParameterDistribution, value: ParameterValue): number {
  if (distribution.kind === 'categorical') return distribution.choices.indexOf(value);
  return value as number;
}

/** The value for an internal representation (a categorical index becomes its choice). */
export function toExternalRepr(distribution: ParameterDistribution, internal: number): ParameterValue {
  if (distribution.kind === 'categorical') {
    const choice: CategoricalChoice | undefined = distribution.choices[Math.round(internal)];
    if (choice === undefined) throw new RangeError(`choice index ${internal} is out of range for ${distribution.choices.length} choices`);
    return choice;
  }
  return distribution.kind === 'int' ? Math.round(internal) : internal;
}

/** Snaps a number onto the distribution's grid and into its range (int / stepped float). */
export function roundToGrid(distribution: ParameterDistribution & { kind: 'int' | 'float' }, value: number): number {
  const step = distribution.kind === 'int' ? (distribution.step ?? 1) : distribution.step;
  let snapped = value;
  if (step !== undefined) snapped = Math.round((value - distribution.low) / step) * step + distribution.low;
  else if (distribution.kind === 'int') snapped = Math.round(value);
  return Math.min(distribution.high, Math.max(distribution.low, snapped));
}
