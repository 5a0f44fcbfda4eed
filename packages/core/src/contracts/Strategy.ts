import type { CreateStudyOptions, Study } from './Study.js';

/**
 * A search strategy (`search:` in the config): it opens studies whose sampler is its own (TPE,
 * GP, NSGA-II, an RL controller...). The pipeline asks each trial's configuration with
 * `study.ask(space)`, evaluates it and tells the result.
 */
export interface Strategy {
  /** How many trials the user asked for (`trials:` in the strategy's options). */
  readonly trials: number;
  /** Opens a study (or resumes it, with `loadIfExists`) sampled by this strategy. */
  createStudy(options: CreateStudyOptions): Study;
}
