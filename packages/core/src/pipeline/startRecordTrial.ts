import type { ParameterDistribution, ParameterValue, TrialParams } from '../contracts/SearchSpace.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';

/**
 * Records a trial the strategy proposed as `running`, with its params, and returns its id in
 * the record. One `createTrial` writes it whole (one SQLite transaction): a process killed here
 * leaves either no trial or the trial with every param, never one with some of them, which a
 * resumed run could not replay (the strategy's proposal would not match the recorded params).
 * Params the search space does not name have no distribution to record them with and are left out.
 */
export function startRecordTrial(record: StudyStorage, studyId: number, params: TrialParams, distributions: Readonly<Record<string, ParameterDistribution>>): number {
  const recorded: Record<string, ParameterValue> = {};
  const recordedDistributions: Record<string, ParameterDistribution> = {};
  for (const [name, value] of Object.entries(params)) {
    const distribution = distributions[name];
    if (distribution === undefined) continue;
    recorded[name] = value;
    recordedDistributions[name] = distribution;
  }
  return record.createTrial(studyId, { state: 'running', params: recorded, distributions: recordedDistributions });
}
