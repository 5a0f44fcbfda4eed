import { describe, expect, it } from 'vitest';
import { silentLogger } from '../contracts/Logger.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { ConfigError } from '../errors/errors.js';
import { InMemoryStorage } from '../study/InMemoryStorage.js';
import { prepareRecordStudy, type PrepareRecordStudyOptions } from './prepareRecordStudy.js';
import { ProcessKilled, storageKilledAfter } from './test-support/storageKilledAfter.js';

const run: PrepareRecordStudyOptions = { studyName: 'autoglm', resume: false, directions: ['maximize'], metrics: ['accuracy'], fingerprint: 'f1', logger: silentLogger };

function addFinishedTrial(storage: StudyStorage, studyId: number): void {
  storage.createTrial(studyId, { state: 'complete', values: [0.9], params: { x: 1 }, distributions: { x: { kind: 'int', low: 0, high: 3 } } });
}

describe('prepareRecordStudy', () => {
  it('should create the study with its metrics and fingerprint, and replace a previous run\'s', () => {
    const storage = new InMemoryStorage();
    const first = prepareRecordStudy(storage, run);
    addFinishedTrial(storage, first);
    const second = prepareRecordStudy(storage, { ...run, fingerprint: 'f2' });
    expect(storage.getAllStudies().map((s) => s.studyId)).toEqual([second]);
    expect(storage.getStudy(second).userAttrs).toEqual({ metrics: ['accuracy'], config_fingerprint: 'f2' });
    expect(storage.getAllTrials(second)).toEqual([]);
  });

  it('should resume the study of the same config with its trials, and refuse a changed config or a missing study', () => {
    const storage = new InMemoryStorage();
    const id = prepareRecordStudy(storage, run);
    addFinishedTrial(storage, id);
    expect(prepareRecordStudy(storage, { ...run, resume: true })).toBe(id);
    expect(storage.getAllTrials(id)).toHaveLength(1);
    expect(() => prepareRecordStudy(storage, { ...run, resume: true, fingerprint: 'f2' })).toThrow(/The config changed since the run in this output folder began/);
    expect(() => prepareRecordStudy(storage, { ...run, resume: true, directions: ['minimize'] })).toThrow(ConfigError);
    expect(() => prepareRecordStudy(new InMemoryStorage(), { ...run, resume: true })).toThrow(/There is no run to resume in this output folder/);
  });

  it('should resume a run killed at any write of its study\'s creation as a fresh run, or say there is none', () => {
    for (let writesBeforeKill = 0; writesBeforeKill <= 3; writesBeforeKill++) {
      const storage = new InMemoryStorage();
      try {
        prepareRecordStudy(storageKilledAfter(storage, writesBeforeKill), run);
      } catch (error) {
        if (!(error instanceof ProcessKilled)) throw error;
      }
      const resume = (): number => prepareRecordStudy(storage, { ...run, resume: true });
      if (writesBeforeKill === 0) {
        expect(resume).toThrow(/There is no run to resume/);
        continue;
      }
      // Not "the config changed": the killed run had run no trial, so resuming it is starting it.
      const id = resume();
      expect(storage.getStudy(id).userAttrs, `killed after ${writesBeforeKill} write(s)`).toEqual({ metrics: ['accuracy'], config_fingerprint: 'f1' });
    }
  });
});
