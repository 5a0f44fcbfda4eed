import type { FrozenTrial, TrialState } from './FrozenTrial.js';
import type { JsonValue } from './JsonValue.js';
import type { Sampler } from './Sampler.js';
import type { CategoricalChoice, ParameterDistribution, ParameterValue, SearchSpace, TrialParams } from './SearchSpace.js';
import type { StudyStorage } from './StudyStorage.js';
import type { TrialPruner } from './TrialPruner.js';

/** Whether an objective is minimized or maximized. */
export type StudyDirection = 'minimize' | 'maximize';

/** Options of `trial.suggestFloat` / `suggestInt`: a grid of `step` from `low`, or a log scale. */
export interface SuggestNumberOptions {
  readonly step?: number;
  readonly log?: boolean;
}

/**
 * A running trial, as the objective sees it (Optuna's `Trial`). Suggesting a name twice returns
 * the first value; suggesting it with another distribution, or a distribution that is not valid
 * (low > high, log with low <= 0, a step that does not divide the range), throws `ConfigError`.
 */
export interface Trial {
  readonly number: number;
  readonly trialId: number;
  /** The parameters suggested so far. */
  readonly params: TrialParams;
  readonly distributions: Readonly<Record<string, ParameterDistribution>>;
  readonly userAttrs: Readonly<Record<string, JsonValue>>;
  readonly datetimeStart: Date | undefined;
  suggestFloat(name: string, low: number, high: number, options?: SuggestNumberOptions): number;
  suggestInt(name: string, low: number, high: number, options?: SuggestNumberOptions): number;
  suggestCategorical<T extends CategoricalChoice>(name: string, choices: readonly T[]): T;
  /** Suggests from any distribution (what `study.ask(space)` does for each parameter). */
  suggest(name: string, distribution: ParameterDistribution): ParameterValue;
  /** Records an intermediate objective value at `step` (an integer >= 0); single-objective only. */
  report(value: number, step: number): void;
  /** Asks the study's pruner whether to stop now (then throw `TrialPruned`). */
  shouldPrune(): boolean;
  setUserAttr(key: string, value: JsonValue): void;
  /** Records the constraint values of this trial (feasible when every value is <= 0). */
  setConstraints(values: readonly number[]): void;
}

/** What an objective returns: one value per direction (a bare number for one direction). */
export type ObjectiveValues = number | readonly number[];

/** The function `study.optimize` evaluates; throw `TrialPruned` to stop a trial early. */
export type StudyObjective = (trial: Trial) => ObjectiveValues | Promise<ObjectiveValues>;

/** The result given to `study.tell`: the objective values, or how the trial ended without them. */
export type TellResult = ObjectiveValues | 'pruned' | 'failed';

/** Error classes `optimize` records as a failed trial and goes on past (Optuna's `catch`). */
export type CatchableError = abstract new (...args: never[]) => Error;

export interface OptimizeOptions {
  /** Stop after this many trials (of this call). */
  readonly trials?: number;
  /** Stop starting new trials after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Errors that fail the trial without stopping the study; any other error fails it and is rethrown. */
  readonly catch?: readonly CatchableError[];
  /** Called after each trial, with the finished trial. */
  readonly callbacks?: readonly ((study: Study, trial: FrozenTrial) => void)[];
}

/**
 * A search over one objective or several (Optuna's `Study`): trials are asked, evaluated and
 * told, the sampler learns from the finished ones, and everything is kept in `storage`.
 */
export interface Study {
  readonly studyName: string;
  readonly studyId: number;
  readonly directions: readonly StudyDirection[];
  readonly sampler: Sampler;
  readonly pruner: TrialPruner;
  readonly storage: StudyStorage;
  /** Every trial so far, in number order. */
  readonly trials: readonly FrozenTrial[];
  getTrials(options?: { readonly states?: readonly TrialState[] }): readonly FrozenTrial[];
  /** The best complete, feasible trial of a single-objective study; throws when there is none. */
  readonly bestTrial: FrozenTrial;
  /** The complete, feasible trials no other complete feasible trial dominates (the Pareto front). */
  readonly bestTrials: readonly FrozenTrial[];
  readonly userAttrs: Readonly<Record<string, JsonValue>>;
  setUserAttr(key: string, value: JsonValue): void;
  /**
   * Optional: prepares the next trial's parameters, for samplers that plan a whole trial against
   * an asynchronous cost model (search-rl's budget clipping). Callers that ask and tell
   * themselves await it, when present, before every `ask`; `optimize` does so itself.
   */
  prepareTrial?(): Promise<void>;
  /**
   * Starts a trial (an enqueued one first); with `fixedDistributions`, suggests each of them
   * before returning, so that `trial.params` holds a whole configuration.
   */
  ask(fixedDistributions?: Readonly<Record<string, ParameterDistribution>>): Trial;
  /** Finishes a running trial (given by object or number) and returns its final snapshot. */
  tell(trial: Trial | number, result: TellResult): FrozenTrial;
  /** Runs ask / objective / tell until `trials` or `timeoutMs`; objectives run one at a time. */
  optimize(objective: StudyObjective, options: OptimizeOptions): Promise<void>;
  /** Queues a trial whose given params are used as they are (the sampler draws the others). */
  enqueueTrial(params: TrialParams, options?: { readonly userAttrs?: Readonly<Record<string, JsonValue>> }): void;
}

/** What a strategy needs to open a study. */
export interface CreateStudyOptions {
  readonly directions: readonly StudyDirection[];
  /** Defaults to a fresh in-memory storage. */
  readonly storage?: StudyStorage;
  /** Defaults to a generated unique name. */
  readonly studyName?: string;
  /** Resume the study of that name when it exists (its directions must agree) instead of failing. */
  readonly loadIfExists?: boolean;
  /**
   * Every parameter trials will suggest, with per-layer `layer`/`features`, when the caller knows
   * it up front (the pipeline does). Layer-wise strategies (search-rl) walk it layer by layer;
   * samplers that learn from distributions alone may ignore it.
   */
  readonly searchSpace?: SearchSpace;
  /** The budget a plan must meet, for strategies that keep every proposal within it. */
  readonly costModel?: SearchCostModel;
}

/**
 * A resource budget over plans (AMC's constraint): `estimate(params)` predicts the cost of the
 * model a plan produces, in `metric` units; a plan is within budget when it is <= `limit`.
 */
export interface SearchCostModel {
  readonly metric: 'macs' | 'params';
  /** The cost of the uncompressed model. */
  readonly baseline: number;
  readonly limit: number;
  estimate(params: TrialParams): Promise<number>;
}
