import { failReasonSystemAttrKey, isFinishedTrialState, type FrozenTrial } from '../contracts/FrozenTrial.js';
import type { OptimizeOptions, Study, StudyObjective } from '../contracts/Study.js';
import { isTrialPruned } from '../contracts/TrialPruned.js';
import { ConfigError } from '../errors/errors.js';

/**
 * The ask / objective / tell loop behind `Study.optimize`, shared by every study implementation
 * (core's and wrappers such as search-rl's), so budgets, pruning, failures and callbacks follow
 * one set of rules (Optuna's): `trials` and/or `timeoutMs` bound the loop; a `TrialPruned` from
 * the objective prunes the trial; any other error fails it with its message as the fail reason,
 * and ends the loop unless its class is listed in `catch`. When the study has `prepareTrial`,
 * it is awaited before each `ask`.
 */
export async function optimizeStudy(study: Study, objective: StudyObjective, options: OptimizeOptions): Promise<void> {
  const { trials, timeoutMs } = options;
  if (trials === undefined && timeoutMs === undefined) {
    throw new ConfigError('study.optimize needs a budget: give trials, timeoutMs, or both.');
  }
  if (trials !== undefined && (!Number.isInteger(trials) || trials < 0)) throw new ConfigError(`study.optimize: trials must be an integer >= 0, not ${trials}.`);
  if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new ConfigError(`study.optimize: timeoutMs must be a number >= 0, not ${timeoutMs}.`);
  const started = performance.now();
  for (let done = 0; trials === undefined || done < trials; done++) {
    if (timeoutMs !== undefined && performance.now() - started >= timeoutMs) break;
    await study.prepareTrial?.();
    const trial = study.ask();
    let finished: FrozenTrial;
    try {
      finished = study.tell(trial, await objective(trial));
    } catch (error) {
      const current = study.storage.getTrial(trial.trialId);
      if (isFinishedTrialState(current.state)) throw error; // tell itself refused the result
      if (isTrialPruned(error)) {
        finished = study.tell(trial, 'pruned');
      } else {
        study.storage.setTrialSystemAttr(trial.trialId, failReasonSystemAttrKey, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        finished = study.tell(trial, 'failed');
        if (!(options.catch ?? []).some((errorClass) => error instanceof errorClass)) throw error;
      }
    }
    for (const callback of options.callbacks ?? []) callback(study, finished);
  }
}
