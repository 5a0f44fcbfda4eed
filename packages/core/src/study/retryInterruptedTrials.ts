import { constraintsSystemAttrKey } from '../contracts/FrozenTrial.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { failReasonSystemAttrKey } from '../contracts/FrozenTrial.js';

/**
 * What resuming a study does with the trials a previous process left `running` (it died, or was
 * stopped, before telling their results):
 * - `retry`: fail each one and queue a `waiting` copy with the same parameters, user attributes
 *   and system attributes (but not constraint values: those are results), so the next `ask`
 *   evaluates that configuration again under a new number (Optuna's `fail_stale_trials` followed
 *   by its `RetryFailedTrialCallback`, without inherited intermediate values);
 * - `fail`: fail them only (Optuna's `fail_stale_trials`): their configurations are not re-run;
 * - `keep`: leave them `running`, for a study other live processes are still working on.
 */
export type InterruptedTrialHandling = 'retry' | 'fail' | 'keep';

/** The system attribute of a retry naming the trial first interrupted (Optuna's key). */
export const failedTrialSystemAttrKey = 'failed_trial';
/** The system attribute of a retry listing the numbers of every interrupted attempt (Optuna's key). */
export const retryHistorySystemAttrKey = 'retry_history';

/**
 * Applies `handling` to the study's `running` trials, which must all be stale (no live process
 * evaluating them). Safe to repeat after a crash midway: a retry is queued before its trial is
 * failed, and a trial whose retry is already queued gets no second one, so no configuration is
 * lost or queued twice. Returns the numbers of the trials failed.
 */
export function retryInterruptedTrials(storage: StudyStorage, studyId: number, handling: InterruptedTrialHandling): number[] {
  if (handling === 'keep') return [];
  const trials = storage.getAllTrials(studyId);
  const retried = new Set<number>();
  for (const trial of trials) {
    const history = trial.systemAttrs[retryHistorySystemAttrKey];
    if (Array.isArray(history) && typeof history.at(-1) === 'number') retried.add(history.at(-1) as number);
  }
  const failed: number[] = [];
  for (const trial of trials) {
    if (trial.state !== 'running') continue;
    if (handling === 'retry' && !retried.has(trial.number)) {
      const previous = trial.systemAttrs[retryHistorySystemAttrKey];
      const history: JsonValue[] = Array.isArray(previous) ? [...previous, trial.number] : [trial.number];
      const { [constraintsSystemAttrKey]: _results, ...systemAttrs } = trial.systemAttrs;
      storage.createTrial(studyId, {
        state: 'waiting',
        params: trial.params,
        distributions: trial.distributions,
        userAttrs: trial.userAttrs,
        systemAttrs: {
          ...systemAttrs,
          [failedTrialSystemAttrKey]: trial.systemAttrs[failedTrialSystemAttrKey] ?? trial.number,
          [retryHistorySystemAttrKey]: history,
        },
      });
    }
    storage.setTrialSystemAttr(
      trial.trialId,
      failReasonSystemAttrKey,
      handling === 'retry'
        ? `Interrupted: the study was resumed while this trial was still running; its parameters were queued again as a new trial.`
        : `Interrupted: the study was resumed while this trial was still running.`,
    );
    storage.setTrialStateValues(trial.trialId, 'failed');
    failed.push(trial.number);
  }
  return failed;
}
