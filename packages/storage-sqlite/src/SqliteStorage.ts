import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  ConfigError,
  FileAccessError,
  StudyStorageError,
  constraintsFromSystemAttrs,
  isFinishedTrialState,
  type FrozenTrial,
  type JsonValue,
  type ParameterDistribution,
  type ParameterValue,
  type StoredStudy,
  type StudyDirection,
  type StudyStorage,
  type TrialParams,
  type TrialState,
  type TrialTemplate,
} from '@open-autoglm/core';
import Database from 'better-sqlite3';

import { formatOptunaDatetime, parseOptunaDatetime } from './optunaDatetime.js';
import { distributionFromOptunaJson, distributionToOptunaJson, fromOptunaInternalValue, toOptunaInternalValue } from './optunaDistribution.js';
import { createOptunaSchema, optunaTables, supportedAlembicRevisions, writtenAlembicRevision } from './optunaSchema.js';
import { formatPythonJson, parsePythonJson } from './pythonJson.js';

export interface SqliteStorageOptions {
  /** Create the file (with Optuna's schema) when it does not exist. Default true. */
  readonly create?: boolean;
  /** How long to wait for another process's write lock before failing, in ms. Default 10000. */
  readonly busyTimeoutMs?: number;
  /**
   * Run SQLite's `quick_check` when opening, so a damaged file fails at once with one message
   * rather than at some later read. Default true; it reads the whole file (milliseconds for a
   * study of thousands of trials).
   */
  readonly checkIntegrity?: boolean;
}

/** Options of `failStaleTrials` / `getStaleTrials`. */
export interface StaleTrialOptions {
  /**
   * A running trial is stale when it showed no sign of life (creation, a parameter, an
   * intermediate value, an attribute, `recordHeartbeat`) for this long, in ms. Default 60000.
   */
  readonly graceMs?: number;
}

const stateToOptuna: Readonly<Record<TrialState, string>> = {
  running: 'RUNNING',
  complete: 'COMPLETE',
  pruned: 'PRUNED',
  failed: 'FAIL',
  waiting: 'WAITING',
};
const stateFromOptuna: ReadonlyMap<string, TrialState> = new Map(Object.entries(stateToOptuna).map(([ours, theirs]) => [theirs, ours as TrialState]));
const directionToOptuna: Readonly<Record<StudyDirection, string>> = { minimize: 'MINIMIZE', maximize: 'MAXIMIZE' };
const directionFromOptuna: ReadonlyMap<string, StudyDirection> = new Map([
  ['MINIMIZE', 'minimize'],
  ['MAXIMIZE', 'maximize'],
]);

/** Optuna's `value_type` / `intermediate_value_type`: non-finite values are a type with a NULL value. */
function toStoredValue(value: number): { readonly value: number | null; readonly type: string } {
  if (Number.isNaN(value)) return { value: null, type: 'NAN' };
  if (value === Infinity) return { value: null, type: 'INF_POS' };
  if (value === -Infinity) return { value: null, type: 'INF_NEG' };
  return { value, type: 'FINITE' };
}

function fromStoredValue(value: number | null, type: string): number | undefined {
  switch (type) {
    case 'FINITE':
      return value ?? undefined;
    case 'INF_POS':
      return Infinity;
    case 'INF_NEG':
      return -Infinity;
    case 'NAN':
      return Number.NaN;
    default:
      return undefined;
  }
}

interface TrialRow {
  readonly trial_id: number;
  readonly number: number | null;
  readonly study_id: number;
  readonly state: string;
  readonly datetime_start: string | null;
  readonly datetime_complete: string | null;
}

interface ParamRow {
  readonly trial_id: number;
  readonly param_name: string;
  readonly param_value: number | null;
  readonly distribution_json: string;
}

interface ValueRow {
  readonly trial_id: number;
  readonly objective: number;
  readonly value: number | null;
  readonly value_type: string;
}

interface IntermediateRow {
  readonly trial_id: number;
  readonly step: number;
  readonly intermediate_value: number | null;
  readonly intermediate_value_type: string;
}

interface AttributeRow {
  readonly owner_id: number;
  readonly key: string;
  readonly value_json: string;
}

/** The child rows of a set of trials, grouped by trial id. */
interface TrialChildren {
  readonly params: Map<number, ParamRow[]>;
  readonly values: Map<number, ValueRow[]>;
  readonly intermediate: Map<number, IntermediateRow[]>;
  readonly userAttrs: Map<number, AttributeRow[]>;
  readonly systemAttrs: Map<number, AttributeRow[]>;
}

const noChildren: TrialChildren = { params: new Map(), values: new Map(), intermediate: new Map(), userAttrs: new Map(), systemAttrs: new Map() };

function groupBy<Row>(rows: readonly Row[], key: (row: Row) => number): Map<number, Row[]> {
  const groups = new Map<number, Row[]>();
  for (const row of rows) {
    const id = key(row);
    const group = groups.get(id);
    if (group === undefined) groups.set(id, [row]);
    else group.push(row);
  }
  return groups;
}

/** What identifies a finished trial's row; `undefined` for a trial that may still change. */
function finishedTrialKey(row: TrialRow): string | undefined {
  const state = stateFromOptuna.get(row.state);
  if (state === undefined || !isFinishedTrialState(state)) return undefined;
  return `${row.study_id}/${String(row.number)}/${row.state}/${String(row.datetime_complete)}`;
}

function sameDistributionKind(previous: ParameterDistribution, next: ParameterDistribution): boolean {
  // Optuna's check_distribution_compatibility: same class; categorical choices must be equal.
  if (previous.kind !== next.kind) return false;
  if (previous.kind !== 'categorical' || next.kind !== 'categorical') return true;
  return previous.choices.length === next.choices.length && previous.choices.every((choice, index) => choice === next.choices[index]);
}

function describeDistribution(distribution: ParameterDistribution): string {
  return distribution.kind === 'categorical' ? `categorical ${JSON.stringify(distribution.choices)}` : distribution.kind;
}

/**
 * A `StudyStorage` in an SQLite file with Optuna's RDB schema: Python's
 * `optuna.load_study(storage="sqlite:///<file>")` reads what is written here and this class reads
 * what Optuna wrote (stamps `v3.0.0.d` of Optuna 3.0/3.1 and `v3.2.0.a` of Optuna >= 3.2). New
 * files are stamped `v3.0.0.d`, which Optuna 3.1 requires and later versions upgrade.
 *
 * Every public method is one SQLite transaction (a trial created from a template is written whole
 * or not at all); the file uses WAL journaling so readers (optuna-dashboard, a Python script)
 * never block the writer. Several processes may share the file: trial numbers are assigned under
 * SQLite's write lock.
 *
 * Resuming after a crash: a study is found again by name and its trials come back as stored.
 * Trials a dead process left `running` stay `running` (as in Optuna) until `failStaleTrials`
 * fails them; staleness is measured with Optuna's `trial_heartbeats` table, which this storage
 * updates on every write to a running trial. A single worker resuming with core's
 * `createStudy({ loadIfExists: true })` needs neither: by default that fails every trial left
 * running and queues its parameters again (`interruptedTrials`).
 */
export class SqliteStorage implements StudyStorage {
  /** The absolute path of the database file. */
  readonly file: string;
  /** The alembic revision the file is stamped with (`v3.0.0.d` or `v3.2.0.a`). */
  readonly alembicRevision: string;

  private readonly db: Database.Database;
  /** Distributions by their JSON text: a study repeats the same few texts in every trial. */
  private readonly parsedDistributions = new Map<string, ParameterDistribution>();
  /**
   * Finished trials never change, so each is read once. An entry is used only while the trial's
   * row still matches its key (a trial id reused after another process deleted a study does not).
   */
  private readonly finishedTrials = new Map<number, { readonly key: string; readonly trial: FrozenTrial }>();
  /** The first distribution recorded for each parameter name, per study (Optuna's compatibility check). */
  private readonly knownDistributions = new Map<number, Map<string, ParameterDistribution>>();

  private constructor(file: string, db: Database.Database, alembicRevision: string) {
    this.file = file;
    this.db = db;
    this.alembicRevision = alembicRevision;
  }

  /**
   * Opens `file`, creating it with Optuna's schema when it does not exist (or is empty). Throws
   * `StudyStorageError` naming the file when it is not an SQLite database, is damaged, is an
   * SQLite database of something else, or was written by an Optuna this package cannot read;
   * `FileAccessError` when it cannot be opened or `create` is false and it does not exist.
   */
  static open(file: string, options: SqliteStorageOptions = {}): SqliteStorage {
    const path = resolve(file);
    const exists = existsSync(path);
    if (!exists && options.create === false) {
      throw new FileAccessError(`Study database ${path} does not exist. Check the path, or allow creating it.`, { file: path });
    }
    if (exists && statSync(path).isDirectory()) {
      throw new FileAccessError(`Study database ${path} is a directory. Give the path of an SQLite file.`, { file: path });
    }
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (error) {
      throw new FileAccessError(`Cannot open study database ${path}: ${(error as Error).message}. Check that its folder exists and is writable.`, {
        file: path,
        cause: error,
      });
    }
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.round(options.busyTimeoutMs ?? 10_000))}`);
      const revision = SqliteStorage.prepareSchema(db, path, options.checkIntegrity ?? true);
      db.pragma('journal_mode = WAL');
      return new SqliteStorage(path, db, revision);
    } catch (error) {
      db.close();
      if (error instanceof StudyStorageError) throw error;
      throw new StudyStorageError(
        `${path} is not a readable SQLite database (${(error as Error).message}). Give a study file written by Open-AutoGLM or Python Optuna, or a new path.`,
        { file: path, cause: error },
      );
    }
  }

  /** Checks an existing file, or creates the schema in an empty one; returns the alembic revision. */
  private static prepareSchema(db: Database.Database, path: string, checkIntegrity: boolean): string {
    if (checkIntegrity) {
      const problems = db.pragma('quick_check', { simple: false }) as { quick_check: string }[];
      const first = problems[0]?.quick_check;
      if (first !== 'ok') {
        throw new StudyStorageError(`Study database ${path} is damaged (SQLite quick_check: ${first ?? 'no answer'}). Restore it from a copy, or start a new study file.`, {
          file: path,
        });
      }
    }
    const tableNames = (): Set<string> => new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name));
    let tables = tableNames();
    if (tables.size === 0) {
      // Checked again under the write lock: another process may be creating the same new file.
      if (createOptunaSchema(db)) return writtenAlembicRevision;
      tables = tableNames();
    }
    const missing = optunaTables.filter((table) => !tables.has(table));
    if (missing.length > 0) {
      throw new StudyStorageError(
        `${path} is an SQLite database but not an Optuna study database (missing tables: ${missing.join(', ')}). Give a study file written by Open-AutoGLM or Python Optuna, or a new path.`,
        { file: path },
      );
    }
    const stamps = (db.prepare('SELECT version_num FROM alembic_version').all() as { version_num: string }[]).map((row) => row.version_num);
    const revision = stamps[0];
    if (stamps.length !== 1 || revision === undefined) {
      throw new StudyStorageError(`Study database ${path} has ${stamps.length} alembic_version rows, expected one. The file was not written by Optuna or was edited by hand.`, {
        file: path,
      });
    }
    if (!supportedAlembicRevisions.includes(revision)) {
      const older = /^v[0-2]\.|^v3\.0\.0\.[a-c]$/.test(revision);
      const advice = older
        ? `It was written by an older Optuna; upgrade it with \`optuna storage upgrade --storage sqlite:///${path}\` (Optuna 3.1 upgrades it to v3.0.0.d).`
        : 'It was written by a newer Optuna than this package supports.';
      throw new StudyStorageError(`Study database ${path} has Optuna schema revision ${revision}; this package reads ${supportedAlembicRevisions.join(' and ')}. ${advice}`, {
        file: path,
      });
    }
    return revision;
  }

  // ---- studies ----

  createStudy(studyName: string, directions: readonly StudyDirection[]): number {
    if (directions.length === 0) throw new ConfigError(`Cannot create study "${studyName}" in ${this.file} without a direction. Give at least one of minimize / maximize.`, { file: this.file });
    return this.write('create a study', () => {
      if (this.findStudyId(studyName) !== undefined) {
        throw new ConfigError(
          `A study named "${studyName}" already exists in ${this.file}. Load it to resume it, delete it first, or choose another name.`,
          { file: this.file },
        );
      }
      const studyId = Number(this.db.prepare('INSERT INTO studies (study_name) VALUES (?)').run(studyName).lastInsertRowid);
      const insertDirection = this.db.prepare('INSERT INTO study_directions (direction, study_id, objective) VALUES (?, ?, ?)');
      directions.forEach((direction, objective) => insertDirection.run(directionToOptuna[direction], studyId, objective));
      return studyId;
    });
  }

  deleteStudy(studyId: number): void {
    this.write('delete a study', () => {
      this.requireStudy(studyId);
      const trialsOfStudy = 'trial_id IN (SELECT trial_id FROM trials WHERE study_id = ?)';
      for (const table of ['trial_params', 'trial_values', 'trial_intermediate_values', 'trial_user_attributes', 'trial_system_attributes', 'trial_heartbeats']) {
        this.db.prepare(`DELETE FROM ${table} WHERE ${trialsOfStudy}`).run(studyId);
      }
      for (const table of ['trials', 'study_directions', 'study_user_attributes', 'study_system_attributes', 'studies']) {
        this.db.prepare(`DELETE FROM ${table} WHERE study_id = ?`).run(studyId);
      }
      this.knownDistributions.delete(studyId);
      for (const [trialId, cached] of this.finishedTrials) if (cached.key.startsWith(`${studyId}/`)) this.finishedTrials.delete(trialId);
    });
  }

  getStudyIdFromName(studyName: string): number | undefined {
    return this.read('find a study', () => this.findStudyId(studyName));
  }

  getStudy(studyId: number): StoredStudy {
    return this.read('read a study', () => {
      const name = this.requireStudy(studyId);
      return this.storedStudy(studyId, name);
    });
  }

  getAllStudies(): readonly StoredStudy[] {
    return this.read('list studies', () =>
      (this.db.prepare('SELECT study_id, study_name FROM studies ORDER BY study_id').all() as { study_id: number; study_name: string }[]).map((row) =>
        this.storedStudy(row.study_id, row.study_name),
      ),
    );
  }

  setStudyUserAttr(studyId: number, key: string, value: JsonValue): void {
    this.write('set a study user attribute', () => {
      this.requireStudy(studyId);
      this.upsertAttribute('study_user_attributes', 'study_id', studyId, key, value);
    });
  }

  setStudySystemAttr(studyId: number, key: string, value: JsonValue): void {
    this.write('set a study system attribute', () => {
      this.requireStudy(studyId);
      this.upsertAttribute('study_system_attributes', 'study_id', studyId, key, value);
    });
  }

  // ---- trials ----

  createTrial(studyId: number, template?: TrialTemplate): number {
    return this.write('create a trial', () => {
      this.requireStudy(studyId);
      const state = template?.state ?? 'running';
      // As Optuna: a trial without a template starts now; a template brings its own datetimes.
      const start = template === undefined ? new Date() : (template.datetimeStart ?? (state === 'running' ? new Date() : undefined));
      const complete = template?.datetimeComplete ?? (isFinishedTrialState(state) ? new Date() : undefined);
      // Trial numbers count the study's earlier trials; the write lock held by this transaction
      // keeps two processes from taking the same number.
      const number = (this.db.prepare('SELECT COUNT(*) AS count FROM trials WHERE study_id = ?').get(studyId) as { count: number }).count;
      const trialId = Number(
        this.db
          .prepare('INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) VALUES (?, ?, ?, ?, ?)')
          .run(number, studyId, stateToOptuna[state], start === undefined ? null : formatOptunaDatetime(start), complete === undefined ? null : formatOptunaDatetime(complete))
          .lastInsertRowid,
      );
      if (template !== undefined) this.writeTemplate(studyId, trialId, template);
      if (state === 'running') this.touchHeartbeat(trialId);
      return trialId;
    });
  }

  getTrialIdFromNumber(studyId: number, trialNumber: number): number | undefined {
    return this.read('find a trial', () => {
      this.requireStudy(studyId);
      const row = this.db.prepare('SELECT trial_id FROM trials WHERE study_id = ? AND number = ?').get(studyId, trialNumber) as { trial_id: number } | undefined;
      return row?.trial_id;
    });
  }

  setTrialParam(trialId: number, paramName: string, value: ParameterValue, distribution: ParameterDistribution): void {
    this.write('set a trial parameter', () => {
      const trial = this.requireUpdatableTrial(trialId);
      this.writeParam(trial.study_id, trialId, paramName, value, distribution);
      this.touchHeartbeat(trialId);
    });
  }

  setTrialStateValues(trialId: number, state: TrialState, values?: readonly number[]): boolean {
    return this.write('set a trial state', () => {
      const trial = this.requireUpdatableTrial(trialId);
      if (state === 'running' && trial.state !== 'WAITING') return false;
      if (values !== undefined) this.writeValues(trial.study_id, trialId, values);
      const now = formatOptunaDatetime(new Date());
      this.db
        .prepare(
          `UPDATE trials SET state = ?,
             datetime_start = CASE WHEN ? THEN ? ELSE datetime_start END,
             datetime_complete = CASE WHEN ? THEN ? ELSE datetime_complete END
           WHERE trial_id = ?`,
        )
        .run(stateToOptuna[state], state === 'running' ? 1 : 0, now, isFinishedTrialState(state) ? 1 : 0, now, trialId);
      if (state === 'running') this.touchHeartbeat(trialId);
      return true;
    });
  }

  setTrialIntermediateValue(trialId: number, step: number, value: number): void {
    this.write('set an intermediate value', () => {
      this.requireUpdatableTrial(trialId);
      this.writeIntermediateValue(trialId, step, value);
      this.touchHeartbeat(trialId);
    });
  }

  setTrialUserAttr(trialId: number, key: string, value: JsonValue): void {
    this.write('set a trial user attribute', () => {
      this.requireUpdatableTrial(trialId);
      this.upsertAttribute('trial_user_attributes', 'trial_id', trialId, key, value);
      this.touchHeartbeat(trialId);
    });
  }

  setTrialSystemAttr(trialId: number, key: string, value: JsonValue): void {
    this.write('set a trial system attribute', () => {
      this.requireUpdatableTrial(trialId);
      this.upsertAttribute('trial_system_attributes', 'trial_id', trialId, key, value);
      this.touchHeartbeat(trialId);
    });
  }

  getTrial(trialId: number): FrozenTrial {
    return this.read('read a trial', () => {
      const row = this.db.prepare('SELECT * FROM trials WHERE trial_id = ?').get(trialId) as TrialRow | undefined;
      if (row === undefined) throw this.unknownTrial(trialId);
      return this.cachedTrial(row) ?? this.frozenTrial(row, this.childRows('trial_id = ?', trialId));
    });
  }

  getAllTrials(studyId: number, states?: readonly TrialState[]): readonly FrozenTrial[] {
    return this.read('read the trials of a study', () => {
      this.requireStudy(studyId);
      const rows = this.db.prepare('SELECT * FROM trials WHERE study_id = ? ORDER BY number, trial_id').all(studyId) as TrialRow[];
      const wanted = states === undefined ? undefined : new Set(states.map((state) => stateToOptuna[state]));
      const selected = wanted === undefined ? rows : rows.filter((row) => wanted.has(row.state));
      const toRead = selected.filter((row) => this.cachedTrial(row) === undefined).map((row) => row.trial_id);
      const children = toRead.length === 0 ? noChildren : this.childRows('trial_id IN (SELECT value FROM json_each(?))', JSON.stringify(toRead));
      return selected.map((row) => this.cachedTrial(row) ?? this.frozenTrial(row, children));
    });
  }

  // ---- resuming after a crash ----

  /**
   * Records that the process running `trialId` is alive (Optuna's `record_heartbeat`). Every write
   * to a running trial does it too; call it from objectives that run long without reporting.
   */
  recordHeartbeat(trialId: number): void {
    this.write('record a heartbeat', () => {
      this.requireUpdatableTrial(trialId);
      this.touchHeartbeat(trialId);
    });
  }

  /**
   * The running trials of the study whose last heartbeat (or, for a trial without one, such as a
   * trial of a Python process run without heartbeats, its start) is older than `graceMs`: trials a
   * process that died left behind.
   */
  getStaleTrials(studyId: number, options: StaleTrialOptions = {}): readonly FrozenTrial[] {
    return this.read('find stale trials', () => {
      const ids = this.staleTrialIds(studyId, options.graceMs ?? 60_000);
      return this.getAllTrials(studyId, ['running']).filter((trial) => ids.has(trial.trialId));
    });
  }

  /**
   * Fails the stale trials of the study (see `getStaleTrials`), as Optuna's `fail_stale_trials`
   * does, and returns them as they are now (`failed`). Call it when resuming a study after a crash;
   * with several live workers, keep `graceMs` well above the longest silence of an objective.
   */
  failStaleTrials(studyId: number, options: StaleTrialOptions = {}): readonly FrozenTrial[] {
    const failedIds = this.write('fail stale trials', () => {
      const ids = this.staleTrialIds(studyId, options.graceMs ?? 60_000);
      const now = formatOptunaDatetime(new Date());
      const fail = this.db.prepare("UPDATE trials SET state = 'FAIL', datetime_complete = ? WHERE trial_id = ? AND state = 'RUNNING'");
      for (const id of ids) fail.run(now, id);
      return ids;
    });
    return this.getAllTrials(studyId, ['failed']).filter((trial) => failedIds.has(trial.trialId));
  }

  /** Closes the file (checkpointing the WAL into it); the storage is unusable afterwards. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- internals ----

  private staleTrialIds(studyId: number, graceMs: number): Set<number> {
    this.requireStudy(studyId);
    // Heartbeats are in UTC (SQLite's CURRENT_TIMESTAMP, as Optuna writes them); start times are
    // local, so they are compared with the local clock.
    const graceDays = graceMs / 86_400_000;
    const rows = this.db
      .prepare(
        `SELECT t.trial_id AS trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id
         WHERE t.study_id = ? AND t.state = 'RUNNING' AND (
           (h.heartbeat IS NOT NULL AND julianday('now') - julianday(h.heartbeat) > ?) OR
           (h.heartbeat IS NULL AND (t.datetime_start IS NULL OR julianday('now', 'localtime') - julianday(t.datetime_start) > ?)))`,
      )
      .all(studyId, graceDays, graceDays) as { trial_id: number }[];
    return new Set(rows.map((row) => row.trial_id));
  }

  private touchHeartbeat(trialId: number): void {
    this.db
      .prepare('INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (?, CURRENT_TIMESTAMP) ON CONFLICT (trial_id) DO UPDATE SET heartbeat = CURRENT_TIMESTAMP')
      .run(trialId);
  }

  private writeTemplate(studyId: number, trialId: number, template: TrialTemplate): void {
    if (template.values !== undefined) this.writeValues(studyId, trialId, template.values);
    for (const [name, value] of Object.entries(template.params ?? {})) {
      const distribution = template.distributions?.[name];
      if (distribution === undefined) {
        throw new StudyStorageError(`Trial template for ${this.file} has parameter "${name}" without a distribution. Give a distribution for every parameter.`, {
          file: this.file,
        });
      }
      this.writeParam(studyId, trialId, name, value, distribution);
    }
    for (const [step, value] of template.intermediateValues ?? []) this.writeIntermediateValue(trialId, step, value);
    for (const [key, value] of Object.entries(template.userAttrs ?? {})) this.upsertAttribute('trial_user_attributes', 'trial_id', trialId, key, value);
    for (const [key, value] of Object.entries(template.systemAttrs ?? {})) this.upsertAttribute('trial_system_attributes', 'trial_id', trialId, key, value);
  }

  private writeParam(studyId: number, trialId: number, name: string, value: ParameterValue, distribution: ParameterDistribution): void {
    const previous = this.firstDistribution(studyId, name);
    if (previous !== undefined && !sameDistributionKind(previous, distribution)) {
      throw new ConfigError(
        `Parameter "${name}" was ${describeDistribution(previous)} in earlier trials of this study (${this.file}) and is now ${describeDistribution(distribution)}. Keep one distribution kind (and one list of choices) per parameter name.`,
        { file: this.file },
      );
    }
    let internal: number;
    try {
      internal = toOptunaInternalValue(distribution, value);
    } catch (error) {
      throw new ConfigError(`Cannot store parameter "${name}" in ${this.file}: ${(error as Error).message}.`, { file: this.file, cause: error });
    }
    this.db
      .prepare(
        `INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)
         ON CONFLICT (trial_id, param_name) DO UPDATE SET param_value = excluded.param_value, distribution_json = excluded.distribution_json`,
      )
      .run(trialId, name, internal, distributionToOptunaJson(distribution));
  }

  private writeValues(studyId: number, trialId: number, values: readonly number[]): void {
    const objectives = (this.db.prepare('SELECT COUNT(*) AS count FROM study_directions WHERE study_id = ?').get(studyId) as { count: number }).count;
    if (values.length !== objectives) {
      throw new StudyStorageError(`Trial ${trialId} of ${this.file} got ${values.length} values for a study with ${objectives} objectives. Give one value per objective.`, {
        file: this.file,
      });
    }
    // Optuna's trial_values has no NaN type: its studies fail trials whose objective is NaN.
    if (values.some((value) => Number.isNaN(value))) {
      throw new StudyStorageError(`Trial ${trialId} of ${this.file} got a NaN objective value, which Optuna's schema cannot store. Fail the trial instead.`, { file: this.file });
    }
    const upsert = this.db.prepare(
      `INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, ?, ?, ?)
       ON CONFLICT (trial_id, objective) DO UPDATE SET value = excluded.value, value_type = excluded.value_type`,
    );
    values.forEach((value, objective) => {
      const stored = toStoredValue(value);
      upsert.run(trialId, objective, stored.value, stored.type);
    });
  }

  private writeIntermediateValue(trialId: number, step: number, value: number): void {
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new StudyStorageError(`Intermediate value of trial ${trialId} in ${this.file} has step ${step}; steps are integers >= 0.`, { file: this.file });
    }
    const stored = toStoredValue(value);
    this.db
      .prepare(
        `INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) VALUES (?, ?, ?, ?)
         ON CONFLICT (trial_id, step) DO UPDATE SET intermediate_value = excluded.intermediate_value, intermediate_value_type = excluded.intermediate_value_type`,
      )
      .run(trialId, step, stored.value, stored.type);
  }

  private upsertAttribute(table: string, ownerColumn: string, ownerId: number, key: string, value: JsonValue): void {
    this.db
      .prepare(`INSERT INTO ${table} (${ownerColumn}, "key", value_json) VALUES (?, ?, ?) ON CONFLICT (${ownerColumn}, "key") DO UPDATE SET value_json = excluded.value_json`)
      .run(ownerId, key, formatPythonJson(value));
  }

  /**
   * The first distribution recorded for `name` in the study, which Optuna compares new ones with.
   * Only found entries are kept: another process may record a name this one has not seen yet.
   */
  private firstDistribution(studyId: number, name: string): ParameterDistribution | undefined {
    let known = this.knownDistributions.get(studyId);
    if (known === undefined) {
      known = new Map();
      this.knownDistributions.set(studyId, known);
    }
    const cached = known.get(name);
    if (cached !== undefined) return cached;
    const row = this.db
      .prepare(
        `SELECT p.distribution_json AS distribution_json FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id
         WHERE t.study_id = ? AND p.param_name = ? ORDER BY p.param_id LIMIT 1`,
      )
      .get(studyId, name) as { distribution_json: string } | undefined;
    if (row === undefined) return undefined;
    const distribution = this.parseDistribution(row.distribution_json, name);
    known.set(name, distribution);
    return distribution;
  }

  private storedStudy(studyId: number, studyName: string): StoredStudy {
    const directions = (this.db.prepare('SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective').all(studyId) as { direction: string }[]).map((row) => {
      const direction = directionFromOptuna.get(row.direction);
      if (direction === undefined) throw this.malformed(`study "${studyName}" has direction ${row.direction}`);
      return direction;
    });
    return {
      studyId,
      studyName,
      directions,
      userAttrs: this.attributes(this.db.prepare('SELECT study_id AS owner_id, "key", value_json FROM study_user_attributes WHERE study_id = ?').all(studyId) as AttributeRow[]),
      systemAttrs: this.attributes(this.db.prepare('SELECT study_id AS owner_id, "key", value_json FROM study_system_attributes WHERE study_id = ?').all(studyId) as AttributeRow[]),
    };
  }

  private childRows(trialFilter: string, argument: number | string): TrialChildren {
    const all = <Row>(sql: string): Row[] => this.db.prepare(sql).all(argument) as Row[];
    return {
      params: groupBy(all<ParamRow>(`SELECT trial_id, param_name, param_value, distribution_json FROM trial_params WHERE ${trialFilter} ORDER BY param_id`), (row) => row.trial_id),
      values: groupBy(all<ValueRow>(`SELECT trial_id, objective, value, value_type FROM trial_values WHERE ${trialFilter} ORDER BY objective`), (row) => row.trial_id),
      intermediate: groupBy(
        all<IntermediateRow>(`SELECT trial_id, step, intermediate_value, intermediate_value_type FROM trial_intermediate_values WHERE ${trialFilter} ORDER BY step`),
        (row) => row.trial_id,
      ),
      userAttrs: groupBy(all<AttributeRow>(`SELECT trial_id AS owner_id, "key", value_json FROM trial_user_attributes WHERE ${trialFilter}`), (row) => row.owner_id),
      systemAttrs: groupBy(all<AttributeRow>(`SELECT trial_id AS owner_id, "key", value_json FROM trial_system_attributes WHERE ${trialFilter}`), (row) => row.owner_id),
    };
  }

  /** The snapshot read earlier of this finished trial, if its row has not changed since. */
  private cachedTrial(row: TrialRow): FrozenTrial | undefined {
    const key = finishedTrialKey(row);
    const cached = this.finishedTrials.get(row.trial_id);
    return key !== undefined && cached?.key === key ? cached.trial : undefined;
  }

  private frozenTrial(row: TrialRow, children: TrialChildren): FrozenTrial {
    const id = row.trial_id;
    const state = stateFromOptuna.get(row.state);
    if (state === undefined) throw this.malformed(`trial ${id} has state ${row.state}`);
    if (row.number === null) throw this.malformed(`trial ${id} has no number`);
    const params: Record<string, ParameterValue> = {};
    const distributions: Record<string, ParameterDistribution> = {};
    for (const param of children.params.get(id) ?? []) {
      const distribution = this.parseDistribution(param.distribution_json, param.param_name);
      if (param.param_value === null) throw this.malformed(`parameter "${param.param_name}" of trial ${id} has no value`);
      try {
        params[param.param_name] = fromOptunaInternalValue(distribution, param.param_value);
      } catch (error) {
        throw this.malformed(`parameter "${param.param_name}" of trial ${id}: ${(error as Error).message}`, error);
      }
      distributions[param.param_name] = distribution;
    }
    const valueRows = children.values.get(id) ?? [];
    const values = valueRows.length === 0 ? undefined : valueRows.map((value) => this.storedNumber(value.value, value.value_type, `value ${value.objective} of trial ${id}`));
    const intermediateValues = new Map<number, number>();
    for (const value of children.intermediate.get(id) ?? []) {
      intermediateValues.set(value.step, this.storedNumber(value.intermediate_value, value.intermediate_value_type, `intermediate value ${value.step} of trial ${id}`));
    }
    const systemAttrs = this.attributes(children.systemAttrs.get(id) ?? []);
    const trial: FrozenTrial = {
      number: row.number,
      trialId: id,
      state,
      values,
      params: params as TrialParams,
      distributions,
      intermediateValues,
      userAttrs: this.attributes(children.userAttrs.get(id) ?? []),
      systemAttrs,
      constraints: constraintsFromSystemAttrs(systemAttrs),
      datetimeStart: this.storedDatetime(row.datetime_start, `start of trial ${id}`),
      datetimeComplete: this.storedDatetime(row.datetime_complete, `completion of trial ${id}`),
    };
    const key = finishedTrialKey(row);
    if (key !== undefined) this.finishedTrials.set(id, { key, trial });
    return trial;
  }

  private attributes(rows: readonly AttributeRow[]): Readonly<Record<string, JsonValue>> {
    const result: Record<string, JsonValue> = {};
    for (const row of rows) {
      let value: JsonValue;
      try {
        value = parsePythonJson(row.value_json);
      } catch (error) {
        throw this.malformed(`attribute "${row.key}" is not JSON (${(error as Error).message})`, error);
      }
      Object.defineProperty(result, row.key, { value, enumerable: true, writable: true, configurable: true });
    }
    return result;
  }

  private parseDistribution(json: string, paramName: string): ParameterDistribution {
    const cached = this.parsedDistributions.get(json);
    if (cached !== undefined) return cached;
    try {
      const distribution = distributionFromOptunaJson(json);
      this.parsedDistributions.set(json, distribution);
      return distribution;
    } catch (error) {
      throw this.malformed(`parameter "${paramName}" has distribution ${json} (${(error as Error).message})`, error);
    }
  }

  private storedNumber(value: number | null, type: string, what: string): number {
    const number = fromStoredValue(value, type);
    if (number === undefined) throw this.malformed(`${what} is stored as ${String(value)} of type ${type}`);
    return number;
  }

  private storedDatetime(text: string | null, what: string): Date | undefined {
    if (text === null) return undefined;
    const date = parseOptunaDatetime(text);
    if (date === undefined) throw this.malformed(`the ${what} is "${text}", not a datetime`);
    return date;
  }

  private findStudyId(studyName: string): number | undefined {
    const row = this.db.prepare('SELECT study_id FROM studies WHERE study_name = ?').get(studyName) as { study_id: number } | undefined;
    return row?.study_id;
  }

  private requireStudy(studyId: number): string {
    const row = this.db.prepare('SELECT study_name FROM studies WHERE study_id = ?').get(studyId) as { study_name: string } | undefined;
    if (row === undefined) throw new StudyStorageError(`No study with id ${studyId} in ${this.file}. Look studies up by name with getStudyIdFromName.`, { file: this.file });
    return row.study_name;
  }

  private requireUpdatableTrial(trialId: number): TrialRow {
    const row = this.db.prepare('SELECT * FROM trials WHERE trial_id = ?').get(trialId) as TrialRow | undefined;
    if (row === undefined) throw this.unknownTrial(trialId);
    const state = stateFromOptuna.get(row.state);
    if (state === undefined || isFinishedTrialState(state)) {
      throw new StudyStorageError(
        `Trial ${row.number ?? '?'} (id ${trialId}) in ${this.file} is already ${state ?? row.state} and cannot change. Create a new trial instead.`,
        { file: this.file },
      );
    }
    return row;
  }

  private unknownTrial(trialId: number): StudyStorageError {
    return new StudyStorageError(`No trial with id ${trialId} in ${this.file}. Look trials up with getTrialIdFromNumber.`, { file: this.file });
  }

  private malformed(problem: string, cause?: unknown): StudyStorageError {
    return new StudyStorageError(`Study database ${this.file} holds a row Optuna would not write: ${problem}. The file was edited by hand or damaged.`, {
      file: this.file,
      cause,
    });
  }

  /** Runs `body` in a write transaction that takes SQLite's write lock at once (no upgrade deadlocks). */
  private write<T>(action: string, body: () => T): T {
    return this.guard(action, () => this.db.transaction(body).immediate());
  }

  /** Runs `body` in a read transaction, so it sees one consistent snapshot of the file. */
  private read<T>(action: string, body: () => T): T {
    return this.guard(action, () => (this.db.inTransaction ? body() : this.db.transaction(body).deferred()));
  }

  /** Turns SQLite's own failures (locked, damaged, closed) into one message naming the file. */
  private guard<T>(action: string, body: () => T): T {
    if (!this.db.open) throw new StudyStorageError(`Study database ${this.file} is closed. Open it again with SqliteStorage.open.`, { file: this.file });
    try {
      return body();
    } catch (error) {
      if (error instanceof ConfigError || error instanceof StudyStorageError) throw error;
      if (error instanceof Database.SqliteError) {
        const hint = error.code.startsWith('SQLITE_BUSY') ? ' Another process holds the file; retry, or raise busyTimeoutMs.' : ' Check the file, or restore it from a copy.';
        throw new StudyStorageError(`Cannot ${action} in ${this.file}: ${error.message} (${error.code}).${hint}`, { file: this.file, cause: error });
      }
      throw error;
    }
  }
}
