import type { TrialPruner } from '../contracts/TrialPruner.js';

/** Never prunes (Optuna's `NopPruner`). */
export class NopPruner implements TrialPruner {
  prune(): boolean {
    return false;
  }
}
