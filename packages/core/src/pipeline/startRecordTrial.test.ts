import { describe, expect, it } from 'vitest';
import type { ParameterDistribution } from '../contracts/SearchSpace.js';
import { InMemoryStorage } from '../study/InMemoryStorage.js';
import { startRecordTrial } from './startRecordTrial.js';
import { ProcessKilled, storageKilledAfter } from './test-support/storageKilledAfter.js';

const distributions: Record<string, ParameterDistribution> = {
  'pass.bits.conv1': { kind: 'int', low: 3, high: 8 },
  'pass.bits.fc1': { kind: 'int', low: 3, high: 8 },
  'pass.ratio': { kind: 'float', low: 0, high: 0.9 },
};
const params = { 'pass.bits.conv1': 4, 'pass.bits.fc1': 7, 'pass.ratio': 0.375 };

describe('startRecordTrial', () => {
  it('should record the trial running with every param the search space names', () => {
    const storage = new InMemoryStorage();
    const studyId = storage.createStudy('autoglm', ['maximize']);
    const id = startRecordTrial(storage, studyId, { ...params, 'not.in.the.space': 1 }, distributions);
    expect(storage.getTrial(id)).toMatchObject({ number: 0, state: 'running', params, distributions });
  });

  it('should leave no trial or a whole one however few of its writes a killed process made', () => {
    // A resumed run replays a running trial by its params: some of them only, and the strategy's proposal cannot match.
    for (let writesBeforeKill = 0; writesBeforeKill <= Object.keys(params).length + 1; writesBeforeKill++) {
      const storage = new InMemoryStorage();
      const studyId = storage.createStudy('autoglm', ['maximize']);
      try {
        startRecordTrial(storageKilledAfter(storage, writesBeforeKill), studyId, params, distributions);
      } catch (error) {
        if (!(error instanceof ProcessKilled)) throw error;
      }
      const left = storage.getAllTrials(studyId).map((t) => ({ state: t.state, params: t.params }));
      expect(left, `killed after ${writesBeforeKill} write(s)`).toEqual(writesBeforeKill === 0 ? [] : [{ state: 'running', params }]);
    }
  });
});
