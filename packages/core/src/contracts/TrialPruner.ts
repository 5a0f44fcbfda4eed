import type { FrozenTrial } from './FrozenTrial.js';
import type { Study } from './Study.js';

/**
 * Decides whether a running trial should stop early, from the intermediate values it and the
 * other trials reported (Optuna's `BasePruner`: median, successive halving...). Named `TrialPruner`
 * to keep it apart from the structured-pruning passes, which prune models, not trials.
 */
export interface TrialPruner {
  /** True when `trial` (running, with its latest intermediate value reported) should be pruned. */
  prune(study: Study, trial: FrozenTrial): boolean;
}
