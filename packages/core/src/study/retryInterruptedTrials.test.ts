import { describe, expect, it } from 'vitest';
import { InMemoryStorage } from './InMemoryStorage.js';
import { createStudy } from './createStudy.js';
import { RandomSampler } from './RandomSampler.js';
import { failedTrialSystemAttrKey, retryHistorySystemAttrKey, retryInterruptedTrials } from './retryInterruptedTrials.js';

const space = { lr: { kind: 'float', low: 1e-4, high: 1e-1, log: true }, method: { kind: 'categorical', choices: ['minmax', null] } } as const;

/** A study with trial #0 complete and trial #1 left running with params, a user attribute and constraints. */
function interruptedStudy(storage = new InMemoryStorage()): { storage: InMemoryStorage; params: Record<string, unknown> } {
  const study = createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', sampler: new RandomSampler({ seed: 1 }) });
  study.tell(study.ask(space), 0.5);
  const running = study.ask(space);
  running.setUserAttr('model', 'resnet8.onnx');
  running.setConstraints([0.1]);
  return { storage, params: { ...running.params } };
}

describe('retryInterruptedTrials', () => {
  it('should fail a running trial and queue its configuration once when a study is resumed', () => {
    const { storage, params } = interruptedStudy();
    const resumed = createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', loadIfExists: true, sampler: new RandomSampler({ seed: 2 }) });
    const [done, interrupted, retry] = resumed.trials;
    expect(resumed.trials.map((trial) => trial.state)).toEqual(['complete', 'failed', 'waiting']);
    expect(done?.values).toEqual([0.5]);
    expect(interrupted?.systemAttrs.fail_reason).toMatch(/Interrupted.*queued again/);
    expect(retry?.params).toEqual(params);
    expect(retry?.userAttrs).toEqual({ model: 'resnet8.onnx' });
    expect(retry?.systemAttrs[failedTrialSystemAttrKey]).toBe(1);
    expect(retry?.systemAttrs[retryHistorySystemAttrKey]).toEqual([1]);
    expect(retry?.constraints).toBeUndefined();

    // The next ask re-runs the interrupted configuration, then the sampler takes over.
    const again = resumed.ask(space);
    expect(again.number).toBe(2);
    expect(again.params).toEqual(params);
    resumed.tell(again, 0.25);
    expect(resumed.ask(space).number).toBe(3);
  });

  it('should chain the retry history and queue nothing twice when resumed repeatedly', () => {
    const { storage } = interruptedStudy();
    const open = (): ReturnType<typeof createStudy> =>
      createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', loadIfExists: true, sampler: new RandomSampler({ seed: 3 }) });
    open().ask(space); // the retry (#2) starts, and this process dies too
    const resumed = open();
    expect(resumed.trials.map((trial) => [trial.number, trial.state])).toEqual([
      [0, 'complete'],
      [1, 'failed'],
      [2, 'failed'],
      [3, 'waiting'],
    ]);
    expect(resumed.trials[3]?.systemAttrs[failedTrialSystemAttrKey]).toBe(1);
    expect(resumed.trials[3]?.systemAttrs[retryHistorySystemAttrKey]).toEqual([1, 2]);
    expect(open().trials).toHaveLength(4);
  });

  it('should not queue a second copy when a crash came between queueing the retry and failing the trial', () => {
    const { storage } = interruptedStudy();
    const studyId = storage.getStudyIdFromName('resnet8') as number;
    const running = storage.getAllTrials(studyId, ['running'])[0];
    storage.createTrial(studyId, { state: 'waiting', params: running?.params ?? {}, distributions: running?.distributions ?? {}, systemAttrs: { retry_history: [1] } });
    expect(retryInterruptedTrials(storage, studyId, 'retry')).toEqual([1]);
    expect(storage.getAllTrials(studyId).map((trial) => trial.state)).toEqual(['complete', 'failed', 'waiting']);
  });

  it('should only fail with "fail", and leave the trial running with "keep"', () => {
    const failed = interruptedStudy();
    createStudy({ directions: ['minimize'], storage: failed.storage, studyName: 'resnet8', loadIfExists: true, interruptedTrials: 'fail', sampler: new RandomSampler() });
    const failedStates = failed.storage.getAllTrials(failed.storage.getStudyIdFromName('resnet8') as number).map((trial) => trial.state);
    expect(failedStates).toEqual(['complete', 'failed']);

    const kept = interruptedStudy();
    createStudy({ directions: ['minimize'], storage: kept.storage, studyName: 'resnet8', loadIfExists: true, interruptedTrials: 'keep', sampler: new RandomSampler() });
    expect(kept.storage.getAllTrials(kept.storage.getStudyIdFromName('resnet8') as number).map((trial) => trial.state)).toEqual(['complete', 'running']);
  });
});
