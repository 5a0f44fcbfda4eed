import type { FrozenTrial, TrialState } from './FrozenTrial.js';
import type { JsonValue } from './JsonValue.js';
import type { ParameterDistribution, ParameterValue, TrialParams } from './SearchSpace.js';
import type { StudyDirection } from './Study.js';

/** One study as a storage lists it. */
export interface StoredStudy {
  readonly studyId: number;
  readonly studyName: string;
  readonly directions: readonly StudyDirection[];
  readonly userAttrs: Readonly<Record<string, JsonValue>>;
  readonly systemAttrs: Readonly<Record<string, JsonValue>>;
}

/**
 * What a new trial starts with. Without a template a trial starts `running` now, with nothing
 * else; `waiting` trials (enqueued) carry fixed params; a finished template adds a trial that was
 * evaluated elsewhere (Optuna's `add_trial`).
 */
export interface TrialTemplate {
  readonly state?: TrialState;
  readonly params?: TrialParams;
  /** Required for each name in `params`. */
  readonly distributions?: Readonly<Record<string, ParameterDistribution>>;
  readonly values?: readonly number[];
  readonly intermediateValues?: ReadonlyMap<number, number>;
  readonly userAttrs?: Readonly<Record<string, JsonValue>>;
  readonly systemAttrs?: Readonly<Record<string, JsonValue>>;
  readonly datetimeStart?: Date;
  readonly datetimeComplete?: Date;
}

/**
 * Where studies and their trials live (Optuna's `BaseStorage`, synchronous): in memory, or an
 * SQLite file in Optuna's RDB schema that Python Optuna reads too. A study found again by name
 * (`getStudyIdFromName`) resumes where it stopped: its trials, numbers, params and attributes
 * come back as they were stored; trials left `running` by a process that died stay `running`
 * until someone fails them (`setTrialStateValues(id, 'failed')`).
 *
 * Rules every implementation keeps (the shared storage tests check them):
 * - study names are unique per storage; trial numbers are 0, 1, 2... per study in creation order;
 *   trial ids are unique per storage;
 * - a finished trial (`complete`, `pruned`, `failed`) never changes again: any update throws
 *   `StudyStorageError`; so does an unknown study or trial id;
 * - `datetimeStart` is set when a trial becomes `running`, `datetimeComplete` when it finishes;
 * - returned trials are snapshots: later updates do not change them.
 */
export interface StudyStorage {
  /** Creates a study; throws `ConfigError` when `studyName` is already taken. */
  createStudy(studyName: string, directions: readonly StudyDirection[]): number;
  /** Deletes a study and its trials. */
  deleteStudy(studyId: number): void;
  /** The id of the study called `studyName`, or undefined. */
  getStudyIdFromName(studyName: string): number | undefined;
  getStudy(studyId: number): StoredStudy;
  getAllStudies(): readonly StoredStudy[];
  setStudyUserAttr(studyId: number, key: string, value: JsonValue): void;
  setStudySystemAttr(studyId: number, key: string, value: JsonValue): void;

  /** Creates a trial with the next number of the study and returns its id. */
  createTrial(studyId: number, template?: TrialTemplate): number;
  /** The id of trial `trialNumber` of the study, or undefined. */
  getTrialIdFromNumber(studyId: number, trialNumber: number): number | undefined;
  /** Records one parameter of a running trial (an external value: the choice, not its index). */
  setTrialParam(trialId: number, paramName: string, value: ParameterValue, distribution: ParameterDistribution): void;
  /**
   * Moves a trial to `state` (with `values` for `complete`, and optionally `pruned`). Returns
   * false, changing nothing, when asked to make `running` a trial that is no longer `waiting`
   * (another worker took it first); throws `StudyStorageError` for a finished trial.
   */
  setTrialStateValues(trialId: number, state: TrialState, values?: readonly number[]): boolean;
  setTrialIntermediateValue(trialId: number, step: number, value: number): void;
  setTrialUserAttr(trialId: number, key: string, value: JsonValue): void;
  setTrialSystemAttr(trialId: number, key: string, value: JsonValue): void;
  getTrial(trialId: number): FrozenTrial;
  /** The study's trials in number order, optionally only those in `states`. */
  getAllTrials(studyId: number, states?: readonly TrialState[]): readonly FrozenTrial[];
  /** Releases files or connections; the storage is unusable afterwards. */
  close?(): void;
}
