import { describe, expect, it } from 'vitest';
import type { ParameterDistribution } from '../contracts/SearchSpace.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { ConfigError, StudyStorageError } from '../errors/errors.js';

export interface StudyStorageConformanceOptions {
  /** A new, empty storage for each test. */
  readonly createStorage: () => StudyStorage;
  /**
   * Closes `storage` and opens the same studies again, as a process that restarts does (an
   * SQLite storage reopens its file). Without it, the resume test reads the same instance.
   */
  readonly reopen?: (storage: StudyStorage) => StudyStorage;
}

/** One parameter of every distribution kind, with a value each (what a storage must give back unchanged). */
export const conformanceParams: readonly { name: string; distribution: ParameterDistribution; value: string | number | boolean }[] = [
  { name: 'lr', distribution: { kind: 'float', low: 1e-5, high: 1e-1, log: true }, value: 0.0031 },
  { name: 'ratio', distribution: { kind: 'float', low: 0, high: 0.7, step: 0.05 }, value: 0.35 },
  { name: 'momentum', distribution: { kind: 'float', low: 0.5, high: 0.99 }, value: 0.9 },
  { name: 'layers', distribution: { kind: 'int', low: 1, high: 8 }, value: 3 },
  { name: 'width', distribution: { kind: 'int', low: 16, high: 256, step: 16 }, value: 64 },
  { name: 'batch', distribution: { kind: 'int', low: 1, high: 1024, log: true }, value: 32 },
  { name: 'calibration', distribution: { kind: 'categorical', choices: ['minmax', 'percentile', 'entropy'] }, value: 'entropy' },
  { name: 'bits', distribution: { kind: 'categorical', choices: [4, 8] }, value: 8 },
  { name: 'perChannel', distribution: { kind: 'categorical', choices: [true, false] }, value: false },
];

/**
 * Adds the `StudyStorage` contract tests to the calling test file (inside a
 * `describe('study storage conformance')`): unique names, trial numbering, every distribution
 * kind, finished trials that never change, snapshots, waiting trials, resume after a reopen.
 */
export function runStudyStorageConformance(options: StudyStorageConformanceOptions): void {
  const { createStorage } = options;
  const reopen = options.reopen ?? ((storage: StudyStorage) => storage);

  describe('study storage conformance', () => {
    it('should create, find, list and delete studies by unique name', () => {
      const storage = createStorage();
      const a = storage.createStudy('a', ['minimize']);
      const b = storage.createStudy('b', ['maximize', 'minimize']);
      expect(a).not.toBe(b);
      expect(() => storage.createStudy('a', ['minimize'])).toThrow(ConfigError);
      expect(storage.getStudyIdFromName('b')).toBe(b);
      expect(storage.getStudyIdFromName('missing')).toBeUndefined();
      expect(storage.getStudy(b).directions).toEqual(['maximize', 'minimize']);
      expect(storage.getAllStudies().map((study) => study.studyName).sort()).toEqual(['a', 'b']);
      storage.setStudyUserAttr(a, 'note', { text: 'baseline', tags: ['x', 1, true, null] });
      storage.setStudySystemAttr(a, 'sampler', 'tpe');
      expect(storage.getStudy(a).userAttrs).toEqual({ note: { text: 'baseline', tags: ['x', 1, true, null] } });
      expect(storage.getStudy(a).systemAttrs).toEqual({ sampler: 'tpe' });
      storage.deleteStudy(a);
      expect(storage.getStudyIdFromName('a')).toBeUndefined();
      expect(() => storage.getStudy(a)).toThrow(StudyStorageError);
      storage.close?.();
    });

    it('should number trials 0, 1, 2... per study with ids unique across studies', () => {
      const storage = createStorage();
      const a = storage.createStudy('a', ['minimize']);
      const b = storage.createStudy('b', ['minimize']);
      const ids = [storage.createTrial(a), storage.createTrial(b), storage.createTrial(a)];
      expect(new Set(ids).size).toBe(3);
      expect(ids.map((id) => storage.getTrial(id).number)).toEqual([0, 0, 1]);
      expect(storage.getTrialIdFromNumber(a, 1)).toBe(ids[2]);
      expect(storage.getTrialIdFromNumber(a, 5)).toBeUndefined();
      const trial = storage.getTrial(ids[0] as number);
      expect(trial.state).toBe('running');
      expect(trial.datetimeStart).toBeInstanceOf(Date);
      expect(trial.datetimeComplete).toBeUndefined();
      storage.close?.();
    });

    it('should give back every kind of parameter, value and attribute as it was set', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('kinds', ['minimize', 'maximize']);
      const trialId = storage.createTrial(studyId);
      for (const { name, distribution, value } of conformanceParams) storage.setTrialParam(trialId, name, value, distribution);
      storage.setTrialIntermediateValue(trialId, 0, 0.5);
      storage.setTrialIntermediateValue(trialId, 3, 0.25);
      storage.setTrialUserAttr(trialId, 'report', { accuracy: 0.91, layers: ['conv1', 'fc'] });
      storage.setTrialSystemAttr(trialId, 'constraints', [0.5, -1]);
      expect(storage.setTrialStateValues(trialId, 'complete', [0.125, 42])).toBe(true);
      const trial = storage.getTrial(trialId);
      expect(trial.state).toBe('complete');
      expect(trial.values).toEqual([0.125, 42]);
      expect(trial.params).toEqual(Object.fromEntries(conformanceParams.map((p) => [p.name, p.value])));
      for (const { name, distribution } of conformanceParams) {
        expect(trial.distributions[name], name).toMatchObject(distribution);
      }
      expect([...trial.intermediateValues.entries()].sort((x, y) => x[0] - y[0])).toEqual([
        [0, 0.5],
        [3, 0.25],
      ]);
      expect(trial.userAttrs).toEqual({ report: { accuracy: 0.91, layers: ['conv1', 'fc'] } });
      expect(trial.constraints).toEqual([0.5, -1]);
      expect(trial.datetimeComplete).toBeInstanceOf(Date);
      storage.close?.();
    });

    it('should refuse any change to a finished trial, and unknown ids, with StudyStorageError', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('finished', ['minimize']);
      const states = ['complete', 'pruned', 'failed'] as const;
      for (const state of states) {
        const trialId = storage.createTrial(studyId);
        storage.setTrialStateValues(trialId, state, state === 'complete' ? [1] : undefined);
        const distribution: ParameterDistribution = { kind: 'float', low: 0, high: 1 };
        expect(() => storage.setTrialParam(trialId, 'x', 0.5, distribution)).toThrow(StudyStorageError);
        expect(() => storage.setTrialStateValues(trialId, 'complete', [2])).toThrow(StudyStorageError);
        expect(() => storage.setTrialIntermediateValue(trialId, 1, 1)).toThrow(StudyStorageError);
        expect(() => storage.setTrialUserAttr(trialId, 'k', 1)).toThrow(StudyStorageError);
        expect(() => storage.setTrialSystemAttr(trialId, 'k', 1)).toThrow(StudyStorageError);
        expect(storage.getTrial(trialId).state).toBe(state);
      }
      expect(() => storage.getTrial(987654)).toThrow(StudyStorageError);
      expect(() => storage.createTrial(987654)).toThrow(StudyStorageError);
      storage.close?.();
    });

    it('should start a waiting trial once: the second taker gets false', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('queue', ['minimize']);
      const trialId = storage.createTrial(studyId, { state: 'waiting', systemAttrs: { fixed_params: { x: 1 } } });
      expect(storage.getTrial(trialId).datetimeStart).toBeUndefined();
      expect(storage.getAllTrials(studyId, ['waiting']).map((t) => t.trialId)).toEqual([trialId]);
      expect(storage.setTrialStateValues(trialId, 'running')).toBe(true);
      expect(storage.setTrialStateValues(trialId, 'running')).toBe(false);
      expect(storage.getTrial(trialId).datetimeStart).toBeInstanceOf(Date);
      expect(storage.getTrial(trialId).systemAttrs).toEqual({ fixed_params: { x: 1 } });
      storage.close?.();
    });

    it('should hand out snapshots that later updates do not change, filtered by state', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('snapshots', ['minimize']);
      const first = storage.createTrial(studyId);
      const second = storage.createTrial(studyId);
      const before = storage.getTrial(first);
      storage.setTrialUserAttr(first, 'k', 'v');
      storage.setTrialStateValues(first, 'complete', [3]);
      expect(before.state).toBe('running');
      expect(before.userAttrs).toEqual({});
      expect(storage.getAllTrials(studyId).map((t) => t.number)).toEqual([0, 1]);
      expect(storage.getAllTrials(studyId, ['complete']).map((t) => t.trialId)).toEqual([first]);
      expect(storage.getAllTrials(studyId, ['running']).map((t) => t.trialId)).toEqual([second]);
      storage.close?.();
    });

    it('should add a finished trial from a template', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('template', ['minimize']);
      const trialId = storage.createTrial(studyId, {
        state: 'complete',
        params: { x: 0.5 },
        distributions: { x: { kind: 'float', low: 0, high: 1 } },
        values: [0.25],
        intermediateValues: new Map([[1, 0.3]]),
        userAttrs: { source: 'imported' },
      });
      const trial = storage.getTrial(trialId);
      expect(trial).toMatchObject({ state: 'complete', params: { x: 0.5 }, values: [0.25], userAttrs: { source: 'imported' } });
      expect(trial.intermediateValues.get(1)).toBe(0.3);
      expect(trial.datetimeComplete).toBeInstanceOf(Date);
      storage.close?.();
    });

    it('should resume a study after a reopen: trials, numbers, params and attributes as stored', () => {
      const storage = createStorage();
      const studyId = storage.createStudy('resume', ['maximize']);
      const done = storage.createTrial(studyId);
      for (const { name, distribution, value } of conformanceParams) storage.setTrialParam(done, name, value, distribution);
      storage.setTrialIntermediateValue(done, 2, 0.75);
      storage.setTrialStateValues(done, 'complete', [0.875]);
      const pruned = storage.createTrial(studyId);
      storage.setTrialIntermediateValue(pruned, 1, 0.1);
      storage.setTrialStateValues(pruned, 'pruned', [0.1]);
      const failed = storage.createTrial(studyId);
      storage.setTrialSystemAttr(failed, 'fail_reason', 'diverged');
      storage.setTrialStateValues(failed, 'failed');
      const running = storage.createTrial(studyId);
      const expected = storage.getAllTrials(studyId);

      const reopened = reopen(storage);
      const resumedId = reopened.getStudyIdFromName('resume');
      expect(resumedId).toBeDefined();
      const trials = reopened.getAllTrials(resumedId as number);
      expect(trials.map((t) => [t.number, t.state, t.values])).toEqual(expected.map((t) => [t.number, t.state, t.values]));
      expect(trials[0]?.params).toEqual(expected[0]?.params);
      expect(trials[0]?.intermediateValues.get(2)).toBe(0.75);
      expect(trials[2]?.systemAttrs).toMatchObject({ fail_reason: 'diverged' });
      // A trial left running by a process that died stays running until someone fails it.
      expect(trials[3]?.state).toBe('running');
      const runningId = reopened.getTrialIdFromNumber(resumedId as number, 3) as number;
      expect(runningId).toBe(running);
      reopened.setTrialStateValues(runningId, 'failed');
      expect(reopened.getTrial(reopened.createTrial(resumedId as number)).number).toBe(4);
      reopened.close?.();
    });
  });
}
