import type { TrialPruner } from '@open-autoglm/core';

/** Never prunes (Optuna's `NopPruner`). */
export class NopPruner implements TrialPruner {
  prune(): boolean {
    return false;
  }
}
