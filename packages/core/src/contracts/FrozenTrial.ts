import type { JsonValue } from './JsonValue.js';
import type { ParameterDistribution, TrialParams } from './SearchSpace.js';

/**
 * The life of a trial, as Optuna names it: `waiting` (enqueued with fixed parameters, not yet
 * started), `running`, then one of the finished states `complete` (has values), `pruned`
 * (stopped early by a pruner), `failed` (the objective threw or returned no usable value).
 */
export type TrialState = 'running' | 'complete' | 'pruned' | 'failed' | 'waiting';

/** The states a trial never leaves. */
export const finishedTrialStates: readonly TrialState[] = ['complete', 'pruned', 'failed'];

/** True for `complete`, `pruned` and `failed`. */
export function isFinishedTrialState(state: TrialState): boolean {
  return state === 'complete' || state === 'pruned' || state === 'failed';
}

/**
 * The system attribute under which a trial's constraint values are stored. It is Optuna's key
 * (`_CONSTRAINTS_KEY`), so that studies written here and by Python Optuna agree on constraints.
 */
export const constraintsSystemAttrKey = 'constraints';

/** The system attribute explaining why a trial failed (Optuna's key). */
export const failReasonSystemAttrKey = 'fail_reason';

/** Reads the constraint values stored under `constraintsSystemAttrKey`, if they are well formed. */
export function constraintsFromSystemAttrs(systemAttrs: Readonly<Record<string, JsonValue>>): readonly number[] | undefined {
  const stored = systemAttrs[constraintsSystemAttrKey];
  if (!Array.isArray(stored)) return undefined;
  const values: number[] = [];
  for (const value of stored as readonly JsonValue[]) {
    if (typeof value !== 'number') return undefined;
    values.push(value);
  }
  return values;
}

/**
 * An immutable snapshot of one trial, as storages return it (Optuna's `FrozenTrial`). Parameter
 * values are external values (the choice itself for categorical parameters, not its index);
 * storages that keep indices (Optuna's RDB schema) convert on the way in and out.
 */
export interface FrozenTrial {
  /** 0-based, unique within its study, in the order trials were created. */
  readonly number: number;
  /** The storage's id for the trial, unique across studies of one storage. */
  readonly trialId: number;
  readonly state: TrialState;
  /** One value per direction of the study. Set for `complete` trials; for `pruned` trials, the
   *  last intermediate value when there is one (as Optuna does); otherwise undefined. */
  readonly values: readonly number[] | undefined;
  readonly params: TrialParams;
  /** The distribution each parameter in `params` was drawn from. */
  readonly distributions: Readonly<Record<string, ParameterDistribution>>;
  /** Values the objective reported along the way, by step (epoch, batch...). */
  readonly intermediateValues: ReadonlyMap<number, number>;
  readonly userAttrs: Readonly<Record<string, JsonValue>>;
  /** Attributes kept by the library itself (constraints, sampler bookkeeping). */
  readonly systemAttrs: Readonly<Record<string, JsonValue>>;
  /**
   * One value per constraint, <= 0 when satisfied (Optuna's rule: a trial is feasible when every
   * value is <= 0). Storages fill it from `systemAttrs[constraintsSystemAttrKey]`.
   */
  readonly constraints: readonly number[] | undefined;
  /** When the trial started running (undefined while `waiting`). */
  readonly datetimeStart: Date | undefined;
  /** When the trial finished (undefined until then). */
  readonly datetimeComplete: Date | undefined;
}
