import type { FrozenTrial } from '../contracts/FrozenTrial.js';
import type { StudyDirection } from '../contracts/Study.js';
import { paretoFrontIndices } from '../study/paretoFront.js';

/** True when every constraint value of the trial is <= 0 (Optuna's rule; no constraints: feasible). */
export function isFeasible(trial: FrozenTrial): boolean {
  return (trial.constraints ?? []).every((value) => value <= 0);
}

/** The complete, feasible trials no other complete, feasible trial dominates, in trial order. */
export function feasibleParetoFront(trials: readonly FrozenTrial[], directions: readonly StudyDirection[]): FrozenTrial[] {
  const candidates = trials.filter((t) => t.state === 'complete' && t.values !== undefined && isFeasible(t));
  // Dominance is over losses: maximized objectives are negated.
  const losses = candidates.map((t) => directions.map((direction, i) => (direction === 'maximize' ? -1 : 1) * (t.values?.[i] ?? Number.NaN)));
  return paretoFrontIndices(losses).map((index) => candidates[index] as FrozenTrial);
}
