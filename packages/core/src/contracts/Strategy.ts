import type { SearchSpace, TrialParams } from './SearchSpace.js';

export type ObjectiveDirection = 'minimize' | 'maximize';

/** How a trial ended: evaluated, stopped early, or failed with an error. */
export type TrialState = 'complete' | 'pruned' | 'failed';

export interface FinishedTrial {
  /** 0-based, in the order trials were asked. */
  readonly number: number;
  readonly params: TrialParams;
  readonly state: TrialState;
  /** One value per objective, in the study's order; present when `state` is `complete`. */
  readonly values?: readonly number[];
  /** One value per constraint: <= 0 satisfied, > 0 by how much it is violated (Optuna's rule). */
  readonly constraints?: readonly number[];
}

/** What a strategy sees of the search: the space, the objectives and the trials so far. */
export interface Study {
  /** The combined space of all passes (names qualified by pass). */
  readonly space: SearchSpace;
  readonly directions: readonly ObjectiveDirection[];
  readonly trials: readonly FinishedTrial[];
  readonly seed: number;
}

/** Proposes trials (ask) and learns from their results (tell): random, TPE, GP, RL controllers. */
export interface Strategy {
  /** Values for every parameter of `study.space` for the next trial. */
  ask(study: Study): Promise<TrialParams>;
  /** Reports a finished trial; `study.trials` already includes it. */
  tell(study: Study, trial: FinishedTrial): Promise<void>;
}
