import type { FrozenTrial } from '../contracts/FrozenTrial.js';
import { feasibleParetoFront } from './feasibleParetoFront.js';
import type { ObjectivePlan } from './planObjectives.js';

/**
 * The trial `best.onnx` is: among the feasible Pareto front (complete trials that meet every
 * bound and that no other such trial dominates), the one best on the plan's primary metric; a tie
 * goes to the one better on the other objectives in config order (the first that differs
 * decides), then to the earlier trial. Choosing on the front first means a tie on the primary
 * metric never picks a trial that another feasible trial beats everywhere else.
 */
export function bestFeasibleTrial(trials: readonly FrozenTrial[], plan: Pick<ObjectivePlan, 'metrics' | 'directions' | 'primaryMetric'>): FrozenTrial | undefined {
  const primary = plan.metrics.indexOf(plan.primaryMetric);
  const order = [primary, ...plan.directions.map((_, index) => index).filter((index) => index !== primary)];
  // feasibleParetoFront keeps trial order, and the comparison is strict: the earlier trial wins a full tie.
  let best: FrozenTrial | undefined;
  for (const trial of feasibleParetoFront(trials, plan.directions)) {
    if (best === undefined || isBetter(trial, best, order, plan.directions)) best = trial;
  }
  return best;
}

/** True when `a` beats `b` on the first objective of `order` where they differ. */
function isBetter(a: FrozenTrial, b: FrozenTrial, order: readonly number[], directions: ObjectivePlan['directions']): boolean {
  for (const index of order) {
    const sign = directions[index] === 'maximize' ? -1 : 1;
    const x = sign * (a.values?.[index] ?? Number.NaN);
    const y = sign * (b.values?.[index] ?? Number.NaN);
    if (x < y) return true;
    if (x > y) return false;
  }
  return false;
}
