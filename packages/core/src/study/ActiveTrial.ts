import { constraintsSystemAttrKey, isFinishedTrialState, type FrozenTrial } from '../contracts/FrozenTrial.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { RelativeSearchSpace } from '../contracts/Sampler.js';
import { isValueInDistribution, type CategoricalChoice, type ParameterDistribution, type ParameterValue, type TrialParams } from '../contracts/SearchSpace.js';
import type { SuggestNumberOptions, Trial } from '../contracts/Study.js';
import { ConfigError } from '../errors/errors.js';
import { checkDistribution, sameDistribution } from './distributions.js';
import type { SearchStudy } from './SearchStudy.js';

/** The system attribute holding an enqueued trial's fixed parameters (Optuna's key). */
export const fixedParamsSystemAttrKey = 'fixed_params';

/**
 * A running trial of a `SearchStudy`: suggestions go to the sampler (relative values drawn when
 * the trial started, independent ones on demand) and are recorded in the study's storage.
 */
export class ActiveTrial implements Trial {
  constructor(
    private readonly study: SearchStudy,
    readonly trialId: number,
    readonly number: number,
    private readonly relativeSearchSpace: RelativeSearchSpace,
    private readonly relativeParams: TrialParams,
  ) {}

  /** The trial as stored now. */
  snapshot(): FrozenTrial {
    return this.study.storage.getTrial(this.trialId);
  }

  get params(): TrialParams {
    return this.snapshot().params;
  }

  get distributions(): Readonly<Record<string, ParameterDistribution>> {
    return this.snapshot().distributions;
  }

  get userAttrs(): Readonly<Record<string, JsonValue>> {
    return this.snapshot().userAttrs;
  }

  get datetimeStart(): Date | undefined {
    return this.snapshot().datetimeStart;
  }

  suggestFloat(name: string, low: number, high: number, options: SuggestNumberOptions = {}): number {
    const distribution: ParameterDistribution = { kind: 'float', low, high, ...withOptions(options) };
    return this.suggest(name, distribution) as number;
  }

  suggestInt(name: string, low: number, high: number, options: SuggestNumberOptions = {}): number {
    const distribution: ParameterDistribution = { kind: 'int', low, high, ...withOptions(options) };
    return this.suggest(name, distribution) as number;
  }

  suggestCategorical<T extends CategoricalChoice>(name: string, choices: readonly T[]): T {
    return this.suggest(name, { kind: 'categorical', choices }) as T;
  }

  suggest(name: string, distribution: ParameterDistribution): ParameterValue {
    checkDistribution(name, distribution);
    const trial = this.runningSnapshot(`suggest "${name}"`);
    const existing = trial.distributions[name];
    const existingValue = trial.params[name];
    if (existing !== undefined && existingValue !== undefined) {
      if (!sameDistribution(existing, distribution)) {
        throw new ConfigError(
          `Trial #${this.number} already suggested "${name}" from ${JSON.stringify(existing)}; it cannot be suggested again from ${JSON.stringify(distribution)}: use one distribution per name, or another name.`,
        );
      }
      return existingValue;
    }
    this.study.checkCompatibleDistribution(name, distribution);
    const value = this.pickValue(trial, name, distribution);
    this.study.storage.setTrialParam(this.trialId, name, value, distribution);
    return value;
  }

  report(value: number, step: number): void {
    if (this.study.directions.length > 1) {
      throw new ConfigError('trial.report is for single-objective studies: a multi-objective study cannot prune on intermediate values.');
    }
    if (!Number.isInteger(step) || step < 0) throw new ConfigError(`trial.report: step must be an integer >= 0, not ${step}.`);
    if (typeof value !== 'number') throw new ConfigError(`trial.report: the value at step ${step} must be a number, not ${typeof value}.`);
    const trial = this.runningSnapshot('report');
    // Optuna keeps the first value reported at a step.
    if (trial.intermediateValues.has(step)) return;
    this.study.storage.setTrialIntermediateValue(this.trialId, step, value);
  }

  shouldPrune(): boolean {
    if (this.study.directions.length > 1) {
      throw new ConfigError('trial.shouldPrune is for single-objective studies: a multi-objective study cannot prune on intermediate values.');
    }
    return this.study.pruner.prune(this.study, this.runningSnapshot('shouldPrune'));
  }

  setUserAttr(key: string, value: JsonValue): void {
    this.runningSnapshot('setUserAttr');
    this.study.storage.setTrialUserAttr(this.trialId, key, value);
  }

  setConstraints(values: readonly number[]): void {
    if (!Array.isArray(values) || values.some((value) => typeof value !== 'number' || Number.isNaN(value))) {
      throw new ConfigError(`trial.setConstraints: expected a list of numbers (<= 0 when satisfied), got ${JSON.stringify(values)}.`);
    }
    this.runningSnapshot('setConstraints');
    this.study.storage.setTrialSystemAttr(this.trialId, constraintsSystemAttrKey, [...values]);
  }

  private runningSnapshot(action: string): FrozenTrial {
    const trial = this.snapshot();
    if (isFinishedTrialState(trial.state)) {
      throw new ConfigError(`Cannot ${action} on trial #${this.number}: it is already ${trial.state}. Ask a new trial.`);
    }
    return trial;
  }

  private pickValue(trial: FrozenTrial, name: string, distribution: ParameterDistribution): ParameterValue {
    const fixed = trial.systemAttrs[fixedParamsSystemAttrKey];
    if (typeof fixed === 'object' && fixed !== null && !Array.isArray(fixed) && name in fixed) {
      const value = (fixed as Readonly<Record<string, JsonValue>>)[name];
      if ((value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') && isValueInDistribution(distribution, value)) return value;
      throw new ConfigError(
        `Trial #${this.number} was enqueued with ${name} = ${JSON.stringify(value)}, which ${JSON.stringify(distribution)} cannot produce: enqueue a value inside the distribution.`,
      );
    }
    const relativeDistribution = this.relativeSearchSpace[name];
    const relativeValue = this.relativeParams[name];
    if (relativeDistribution !== undefined && relativeValue !== undefined && sameDistribution(relativeDistribution, distribution)) {
      return relativeValue;
    }
    return this.study.sampler.sampleIndependent(this.study, trial, name, distribution);
  }
}

function withOptions(options: SuggestNumberOptions): { step?: number; log?: boolean } {
  return { ...(options.step === undefined ? {} : { step: options.step }), ...(options.log === undefined ? {} : { log: options.log }) };
}
