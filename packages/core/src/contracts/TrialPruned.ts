/**
 * Thrown by an objective to stop its trial early (Optuna's `TrialPruned`), typically after
 * `trial.shouldPrune()` returned true. `study.optimize` records the trial as `pruned` and goes
 * on. It is a signal, not a failure, so it is not an `AutoGlmError`.
 */
export class TrialPruned extends Error {
  constructor(message = 'trial pruned') {
    super(message);
    this.name = 'TrialPruned';
  }
}

/** True for `TrialPruned` from this or any other copy of core. */
export function isTrialPruned(error: unknown): error is TrialPruned {
  return error instanceof Error && error.name === 'TrialPruned';
}
