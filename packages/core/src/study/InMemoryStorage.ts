import { constraintsFromSystemAttrs, isFinishedTrialState, type FrozenTrial, type TrialState } from '../contracts/FrozenTrial.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { ParameterDistribution, ParameterValue } from '../contracts/SearchSpace.js';
import type { StudyDirection } from '../contracts/Study.js';
import type { StoredStudy, StudyStorage, TrialTemplate } from '../contracts/StudyStorage.js';
import { ConfigError, StudyStorageError } from '../errors/errors.js';

interface StudyRecord {
  studyId: number;
  studyName: string;
  directions: readonly StudyDirection[];
  userAttrs: Record<string, JsonValue>;
  systemAttrs: Record<string, JsonValue>;
  /** Snapshots by trial number; an update replaces the snapshot, so handed-out ones never change. */
  trials: FrozenTrial[];
}

/**
 * Studies kept in this process's memory (Optuna's `InMemoryStorage`): fast, and gone when the
 * process ends. Use the SQLite storage to keep or share a study.
 */
export class InMemoryStorage implements StudyStorage {
  private readonly studies = new Map<number, StudyRecord>();
  private readonly trialLocations = new Map<number, { studyId: number; number: number }>();
  private nextStudyId = 0;
  private nextTrialId = 0;

  createStudy(studyName: string, directions: readonly StudyDirection[]): number {
    if (this.getStudyIdFromName(studyName) !== undefined) {
      throw new ConfigError(`A study named "${studyName}" already exists: load it (loadIfExists: true) or choose another name.`);
    }
    if (directions.length === 0) throw new ConfigError(`Cannot create study "${studyName}" without directions: give at least one.`);
    const studyId = this.nextStudyId++;
    this.studies.set(studyId, { studyId, studyName, directions: Object.freeze([...directions]), userAttrs: {}, systemAttrs: {}, trials: [] });
    return studyId;
  }

  deleteStudy(studyId: number): void {
    const study = this.study(studyId);
    for (const trial of study.trials) this.trialLocations.delete(trial.trialId);
    this.studies.delete(studyId);
  }

  getStudyIdFromName(studyName: string): number | undefined {
    for (const study of this.studies.values()) if (study.studyName === studyName) return study.studyId;
    return undefined;
  }

  getStudy(studyId: number): StoredStudy {
    const study = this.study(studyId);
    return {
      studyId,
      studyName: study.studyName,
      directions: study.directions,
      userAttrs: { ...study.userAttrs },
      systemAttrs: { ...study.systemAttrs },
    };
  }

  getAllStudies(): readonly StoredStudy[] {
    return [...this.studies.keys()].map((studyId) => this.getStudy(studyId));
  }

  setStudyUserAttr(studyId: number, key: string, value: JsonValue): void {
    this.study(studyId).userAttrs[key] = value;
  }

  setStudySystemAttr(studyId: number, key: string, value: JsonValue): void {
    this.study(studyId).systemAttrs[key] = value;
  }

  createTrial(studyId: number, template: TrialTemplate = {}): number {
    const study = this.study(studyId);
    const trialId = this.nextTrialId++;
    const number = study.trials.length;
    const state = template.state ?? 'running';
    const params = { ...template.params };
    const distributions = { ...template.distributions };
    for (const name of Object.keys(params)) {
      if (distributions[name] === undefined) {
        throw new StudyStorageError(`Cannot create a trial with parameter "${name}" but no distribution for it: give one in the template's distributions.`);
      }
    }
    const systemAttrs = { ...template.systemAttrs };
    study.trials.push(
      freezeTrial({
        number,
        trialId,
        state,
        values: template.values === undefined ? undefined : [...template.values],
        params,
        distributions,
        intermediateValues: new Map(template.intermediateValues ?? []),
        userAttrs: { ...template.userAttrs },
        systemAttrs,
        constraints: constraintsFromSystemAttrs(systemAttrs),
        datetimeStart: template.datetimeStart ?? (state === 'waiting' ? undefined : new Date()),
        datetimeComplete: template.datetimeComplete ?? (isFinishedTrialState(state) ? new Date() : undefined),
      }),
    );
    this.trialLocations.set(trialId, { studyId, number });
    return trialId;
  }

  getTrialIdFromNumber(studyId: number, trialNumber: number): number | undefined {
    return this.study(studyId).trials[trialNumber]?.trialId;
  }

  setTrialParam(trialId: number, paramName: string, value: ParameterValue, distribution: ParameterDistribution): void {
    this.updateUnfinished(trialId, (trial) => ({
      ...trial,
      params: { ...trial.params, [paramName]: value },
      distributions: { ...trial.distributions, [paramName]: distribution },
    }));
  }

  setTrialStateValues(trialId: number, state: TrialState, values?: readonly number[]): boolean {
    const current = this.getTrial(trialId);
    if (state === 'running' && current.state !== 'waiting') {
      if (isFinishedTrialState(current.state)) throw finishedError(current);
      return false;
    }
    this.updateUnfinished(trialId, (trial) => ({
      ...trial,
      state,
      values: values === undefined ? trial.values : [...values],
      datetimeStart: state === 'running' ? new Date() : trial.datetimeStart,
      datetimeComplete: isFinishedTrialState(state) ? new Date() : trial.datetimeComplete,
    }));
    return true;
  }

  setTrialIntermediateValue(trialId: number, step: number, value: number): void {
    this.updateUnfinished(trialId, (trial) => ({ ...trial, intermediateValues: new Map(trial.intermediateValues).set(step, value) }));
  }

  setTrialUserAttr(trialId: number, key: string, value: JsonValue): void {
    this.updateUnfinished(trialId, (trial) => ({ ...trial, userAttrs: { ...trial.userAttrs, [key]: value } }));
  }

  setTrialSystemAttr(trialId: number, key: string, value: JsonValue): void {
    this.updateUnfinished(trialId, (trial) => {
      const systemAttrs = { ...trial.systemAttrs, [key]: value };
      return { ...trial, systemAttrs, constraints: constraintsFromSystemAttrs(systemAttrs) };
    });
  }

  getTrial(trialId: number): FrozenTrial {
    const location = this.trialLocations.get(trialId);
    const trial = location === undefined ? undefined : this.studies.get(location.studyId)?.trials[location.number];
    if (trial === undefined) throw new StudyStorageError(`No trial with id ${trialId} in this storage: use an id returned by createTrial.`);
    return trial;
  }

  getAllTrials(studyId: number, states?: readonly TrialState[]): readonly FrozenTrial[] {
    const trials = this.study(studyId).trials;
    return states === undefined ? trials.slice() : trials.filter((trial) => states.includes(trial.state));
  }

  private study(studyId: number): StudyRecord {
    const study = this.studies.get(studyId);
    if (study === undefined) throw new StudyStorageError(`No study with id ${studyId} in this storage: create it first or look it up by name.`);
    return study;
  }

  private updateUnfinished(trialId: number, update: (trial: FrozenTrial) => FrozenTrial): void {
    const trial = this.getTrial(trialId);
    if (isFinishedTrialState(trial.state)) throw finishedError(trial);
    const location = this.trialLocations.get(trialId);
    const study = location === undefined ? undefined : this.studies.get(location.studyId);
    if (study === undefined || location === undefined) throw new StudyStorageError(`No trial with id ${trialId} in this storage.`);
    study.trials[location.number] = freezeTrial(update(trial));
  }
}

function finishedError(trial: FrozenTrial): StudyStorageError {
  return new StudyStorageError(`Trial #${trial.number} is already ${trial.state} and cannot change: start a new trial instead.`);
}

function freezeTrial(trial: FrozenTrial): FrozenTrial {
  Object.freeze(trial.params);
  Object.freeze(trial.distributions);
  Object.freeze(trial.userAttrs);
  Object.freeze(trial.systemAttrs);
  if (trial.values !== undefined) Object.freeze(trial.values);
  return Object.freeze(trial);
}
