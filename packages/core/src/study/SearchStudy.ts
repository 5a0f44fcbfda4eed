import { constraintsSystemAttrKey, failReasonSystemAttrKey, isFinishedTrialState, type FrozenTrial, type TrialState } from '../contracts/FrozenTrial.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { Sampler } from '../contracts/Sampler.js';
import type { ParameterDistribution, TrialParams } from '../contracts/SearchSpace.js';
import type { OptimizeOptions, Study, StudyDirection, StudyObjective, TellResult, Trial } from '../contracts/Study.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import type { TrialPruner } from '../contracts/TrialPruner.js';
import { ConfigError } from '../errors/errors.js';
import { ActiveTrial, fixedParamsSystemAttrKey } from './ActiveTrial.js';
import { optimizeStudy } from './optimizeStudy.js';
import { compatibleDistributions } from './distributions.js';
import { paretoFrontIndices } from './paretoFront.js';

/** Computes a finished trial's constraint values (Optuna's `constraints_func`): feasible when all <= 0. */
export type ConstraintsFunction = (trial: FrozenTrial) => readonly number[];


/**
 * A study run in this process over any `StudyStorage` (Optuna's `Study`): `ask` starts a trial
 * (an enqueued one first) and draws its relative parameters, `tell` finishes it after the
 * sampler's `afterTrial`, `optimize` loops over both.
 */
export class SearchStudy implements Study {
  // The first distribution seen for each name, to refuse an incompatible one early.
  private readonly knownDistributions = new Map<string, ParameterDistribution>();

  constructor(
    readonly storage: StudyStorage,
    readonly studyId: number,
    readonly studyName: string,
    readonly directions: readonly StudyDirection[],
    readonly sampler: Sampler,
    readonly pruner: TrialPruner,
    private readonly constraintsFunction: ConstraintsFunction | undefined,
  ) {}

  get trials(): readonly FrozenTrial[] {
    return this.storage.getAllTrials(this.studyId);
  }

  getTrials(options: { readonly states?: readonly TrialState[] } = {}): readonly FrozenTrial[] {
    return this.storage.getAllTrials(this.studyId, options.states);
  }

  get userAttrs(): Readonly<Record<string, JsonValue>> {
    return this.storage.getStudy(this.studyId).userAttrs;
  }

  setUserAttr(key: string, value: JsonValue): void {
    this.storage.setStudyUserAttr(this.studyId, key, value);
  }

  get bestTrial(): FrozenTrial {
    if (this.directions.length !== 1) {
      throw new ConfigError(`Study "${this.studyName}" has ${this.directions.length} objectives, so it has no single best trial: use bestTrials (the Pareto front).`);
    }
    const sign = this.directions[0] === 'maximize' ? -1 : 1;
    let best: FrozenTrial | undefined;
    for (const trial of this.feasibleCompleteTrials()) {
      if (best === undefined || sign * (trial.values?.[0] ?? 0) < sign * (best.values?.[0] ?? 0)) best = trial;
    }
    if (best === undefined) {
      throw new ConfigError(`Study "${this.studyName}" has no complete feasible trial yet: run some trials (optimize, or ask and tell) first.`);
    }
    return best;
  }

  get bestTrials(): readonly FrozenTrial[] {
    const trials = this.feasibleCompleteTrials();
    const losses = trials.map((trial) => this.losses(trial));
    return paretoFrontIndices(losses).map((i) => trials[i] as FrozenTrial);
  }

  /** The trial's values turned into losses (maximized objectives negated). */
  losses(trial: FrozenTrial): number[] {
    return this.directions.map((direction, i) => (direction === 'maximize' ? -1 : 1) * (trial.values?.[i] ?? Number.NaN));
  }

  ask(fixedDistributions: Readonly<Record<string, ParameterDistribution>> = {}): Trial {
    const trialId = this.popWaitingTrial() ?? this.storage.createTrial(this.studyId);
    let frozen = this.storage.getTrial(trialId);
    this.sampler.beforeTrial?.(this, frozen);
    frozen = this.storage.getTrial(trialId);
    const relativeSearchSpace = this.sampler.inferRelativeSearchSpace(this, frozen);
    // Called even for an empty space: samplers such as NSGA-II record the trial's generation there.
    const relativeParams = this.sampler.sampleRelative(this, frozen, relativeSearchSpace);
    const trial = new ActiveTrial(this, trialId, frozen.number, relativeSearchSpace, relativeParams);
    for (const [name, distribution] of Object.entries(fixedDistributions)) trial.suggest(name, distribution);
    return trial;
  }

  tell(trial: Trial | number, result: TellResult): FrozenTrial {
    const trialId = this.resolveTrialId(trial);
    const frozen = this.storage.getTrial(trialId);
    if (isFinishedTrialState(frozen.state)) {
      throw new ConfigError(`Trial #${frozen.number} of study "${this.studyName}" was already told (${frozen.state}): tell each trial once.`);
    }
    if (frozen.state === 'waiting') throw new ConfigError(`Trial #${frozen.number} is still waiting: ask it before telling its result.`);

    let state: TrialState;
    let values: number[] | undefined;
    let failReason: string | undefined;
    if (result === 'pruned') {
      state = 'pruned';
      values = this.lastIntermediateValue(frozen);
    } else if (result === 'failed') {
      state = 'failed';
    } else {
      const given = typeof result === 'number' ? [result] : Array.isArray(result) ? [...(result as readonly unknown[])] : undefined;
      if (given === undefined || given.length !== this.directions.length || given.some((value) => typeof value !== 'number')) {
        this.finish(frozen, 'failed', undefined, `the objective returned ${JSON.stringify(result)}, not ${this.directions.length} number(s)`);
        throw new ConfigError(
          `Trial #${frozen.number}: expected ${this.directions.length} objective value(s) (one per direction: ${this.directions.join(', ')}), got ${JSON.stringify(result)}. The trial was marked failed; return one number per direction.`,
        );
      }
      values = given as number[];
      if (values.some((value) => Number.isNaN(value))) {
        // A diverged evaluation: Optuna records it as failed rather than as a value.
        state = 'failed';
        failReason = `the objective returned NaN (${JSON.stringify(values)})`;
        values = undefined;
      } else {
        state = 'complete';
      }
    }
    return this.finish(frozen, state, values, failReason);
  }

  optimize(objective: StudyObjective, options: OptimizeOptions): Promise<void> {
    return optimizeStudy(this, objective, options);
  }

  enqueueTrial(params: TrialParams, options: { readonly userAttrs?: Readonly<Record<string, JsonValue>> } = {}): void {
    this.storage.createTrial(this.studyId, {
      state: 'waiting',
      systemAttrs: { [fixedParamsSystemAttrKey]: { ...params } },
      ...(options.userAttrs === undefined ? {} : { userAttrs: options.userAttrs }),
    });
  }

  /** Throws `ConfigError` when `name` was suggested in this study from a distribution of another kind or other choices. */
  checkCompatibleDistribution(name: string, distribution: ParameterDistribution): void {
    let known = this.knownDistributions.get(name);
    if (known === undefined) {
      known = this.trials.find((trial) => trial.distributions[name] !== undefined)?.distributions[name] ?? distribution;
      this.knownDistributions.set(name, known);
    }
    if (!compatibleDistributions(known, distribution)) {
      throw new ConfigError(
        `Parameter "${name}" was suggested in study "${this.studyName}" from ${JSON.stringify(known)}; it cannot now come from ${JSON.stringify(distribution)}: keep its kind (and its choices), or use another name.`,
      );
    }
  }

  private finish(frozen: FrozenTrial, state: TrialState, values: number[] | undefined, failReason?: string): FrozenTrial {
    if (failReason !== undefined) this.storage.setTrialSystemAttr(frozen.trialId, failReasonSystemAttrKey, failReason);
    if (this.constraintsFunction !== undefined && (state === 'complete' || state === 'pruned') && frozen.constraints === undefined) {
      const constraints = [...this.constraintsFunction(this.storage.getTrial(frozen.trialId))];
      if (constraints.some((value) => typeof value !== 'number' || Number.isNaN(value))) {
        this.storage.setTrialStateValues(frozen.trialId, 'failed');
        throw new ConfigError(`The constraints function returned ${JSON.stringify(constraints)} for trial #${frozen.number}: return numbers (<= 0 when satisfied), never NaN.`);
      }
      this.storage.setTrialSystemAttr(frozen.trialId, constraintsSystemAttrKey, constraints);
    }
    this.sampler.afterTrial?.(this, this.storage.getTrial(frozen.trialId), state, values);
    this.storage.setTrialStateValues(frozen.trialId, state, values);
    return this.storage.getTrial(frozen.trialId);
  }

  private lastIntermediateValue(trial: FrozenTrial): number[] | undefined {
    if (this.directions.length !== 1 || trial.intermediateValues.size === 0) return undefined;
    const lastStep = Math.max(...trial.intermediateValues.keys());
    const value = trial.intermediateValues.get(lastStep);
    return value === undefined || Number.isNaN(value) ? undefined : [value];
  }

  private feasibleCompleteTrials(): FrozenTrial[] {
    return this.getTrials({ states: ['complete'] }).filter((trial) => trial.constraints === undefined || trial.constraints.every((value) => value <= 0));
  }

  private popWaitingTrial(): number | undefined {
    for (const trial of this.getTrials({ states: ['waiting'] })) {
      if (this.storage.setTrialStateValues(trial.trialId, 'running')) return trial.trialId;
    }
    return undefined;
  }

  private resolveTrialId(trial: Trial | number): number {
    if (typeof trial !== 'number') {
      if (this.storage.getTrialIdFromNumber(this.studyId, trial.number) !== trial.trialId) {
        throw new ConfigError(`Trial #${trial.number} belongs to another study than "${this.studyName}": tell it to the study that asked it.`);
      }
      return trial.trialId;
    }
    const trialId = Number.isInteger(trial) ? this.storage.getTrialIdFromNumber(this.studyId, trial) : undefined;
    if (trialId === undefined) throw new ConfigError(`Study "${this.studyName}" has no trial number ${trial}: tell a trial returned by ask.`);
    return trialId;
  }
}
