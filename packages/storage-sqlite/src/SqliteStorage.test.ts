import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ConfigError, FileAccessError, RandomSampler, StudyStorageError, createStudy, type ParameterDistribution } from '@open-autoglm/core';
import { runStudyStorageConformance } from '@open-autoglm/core/testing';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SqliteStorage } from './SqliteStorage.js';

const unit: ParameterDistribution = { kind: 'float', low: 0, high: 1 };
const activation: ParameterDistribution = { kind: 'categorical', choices: ['relu', 'gelu', 2, true] };

let dir: string;
let file: string;
const opened: SqliteStorage[] = [];

function open(path = file): SqliteStorage {
  const storage = SqliteStorage.open(path);
  opened.push(storage);
  return storage;
}

/** Rows as Optuna's tables hold them, read behind the storage's back. */
function rows(sql: string, ...parameters: unknown[]): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all(...parameters);
  } finally {
    db.close();
  }
}

function catchError(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'autoglm-sqlite-'));
  file = join(dir, 'study.db');
});

afterEach(() => {
  for (const storage of opened.splice(0)) storage.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteStorage', () => {
  runStudyStorageConformance({
    createStorage: () => SqliteStorage.open(join(dir, 'conformance.db')),
    reopen: (storage) => {
      const path = (storage as SqliteStorage).file;
      storage.close?.();
      return SqliteStorage.open(path, { create: false });
    },
  });

  it('should create the file with WAL journaling and keep studies apart by name', () => {
    const storage = open();
    expect(rows('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    const first = storage.createStudy('first', ['minimize']);
    const second = storage.createStudy('second', ['maximize', 'minimize']);
    storage.setStudyUserAttr(second, 'owner', { team: 'search' });
    storage.setStudySystemAttr(second, 'sampler', 'tpe');
    expect(storage.getStudyIdFromName('second')).toBe(second);
    expect(storage.getStudyIdFromName('third')).toBeUndefined();
    expect(storage.getStudy(second)).toEqual({
      studyId: second,
      studyName: 'second',
      directions: ['maximize', 'minimize'],
      userAttrs: { owner: { team: 'search' } },
      systemAttrs: { sampler: 'tpe' },
    });
    expect(storage.getAllStudies().map((study) => study.studyName)).toEqual(['first', 'second']);
    expect(rows('SELECT direction, objective FROM study_directions WHERE study_id = ?', second)).toEqual([
      { direction: 'MAXIMIZE', objective: 0 },
      { direction: 'MINIMIZE', objective: 1 },
    ]);
    expect(first).not.toBe(second);
  });

  it('should never overwrite an existing study: a taken name is a ConfigError and changes nothing', () => {
    const storage = open();
    const study = storage.createStudy('search', ['minimize']);
    storage.createTrial(study);
    const error = catchError(() => storage.createStudy('search', ['maximize']));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(`A study named "search" already exists in ${file}`);
    expect(storage.getStudy(study).directions).toEqual(['minimize']);
    expect(storage.getAllTrials(study)).toHaveLength(1);
  });

  it('should number trials per study and store them as Optuna does', () => {
    const storage = open();
    const a = storage.createStudy('a', ['minimize']);
    const b = storage.createStudy('b', ['minimize', 'maximize']);
    const ids = [storage.createTrial(a), storage.createTrial(b), storage.createTrial(a)];
    expect(new Set(ids).size).toBe(3);
    expect(storage.getAllTrials(a).map((trial) => trial.number)).toEqual([0, 1]);
    expect(storage.getTrialIdFromNumber(a, 1)).toBe(ids[2]);
    expect(storage.getTrialIdFromNumber(a, 2)).toBeUndefined();

    const trial = ids[0] as number;
    storage.setTrialParam(trial, 'lr', 0.25, unit);
    storage.setTrialParam(trial, 'activation', 2, activation);
    storage.setTrialIntermediateValue(trial, 0, Number.NaN);
    storage.setTrialIntermediateValue(trial, 1, -Infinity);
    storage.setTrialUserAttr(trial, 'epochs', [1, 2]);
    expect(storage.setTrialStateValues(trial, 'complete', [Infinity])).toBe(true);
    const both = storage.createTrial(b);
    storage.setTrialStateValues(both, 'complete', [0.5, -2]);

    expect(rows('SELECT param_name, param_value FROM trial_params ORDER BY param_id')).toEqual([
      { param_name: 'lr', param_value: 0.25 },
      { param_name: 'activation', param_value: 2 }, // the index of the choice 2
    ]);
    expect(rows('SELECT objective, value, value_type FROM trial_values ORDER BY trial_value_id')).toEqual([
      { objective: 0, value: null, value_type: 'INF_POS' },
      { objective: 0, value: 0.5, value_type: 'FINITE' },
      { objective: 1, value: -2, value_type: 'FINITE' },
    ]);
    expect(rows('SELECT step, intermediate_value, intermediate_value_type FROM trial_intermediate_values ORDER BY step')).toEqual([
      { step: 0, intermediate_value: null, intermediate_value_type: 'NAN' },
      { step: 1, intermediate_value: null, intermediate_value_type: 'INF_NEG' },
    ]);
    expect(rows('SELECT "key", value_json FROM trial_user_attributes')).toEqual([{ key: 'epochs', value_json: '[1, 2]' }]);
    expect(rows('SELECT state FROM trials WHERE trial_id = ?', trial)).toEqual([{ state: 'COMPLETE' }]);

    const frozen = storage.getTrial(trial);
    expect(frozen).toMatchObject({ number: 0, trialId: trial, state: 'complete', values: [Infinity], params: { lr: 0.25, activation: 2 }, userAttrs: { epochs: [1, 2] } });
    expect(frozen.distributions).toEqual({ lr: unit, activation });
    expect([...frozen.intermediateValues]).toEqual([
      [0, Number.NaN],
      [1, -Infinity],
    ]);
    expect(frozen.datetimeComplete?.getTime()).toBeGreaterThanOrEqual(frozen.datetimeStart?.getTime() ?? Infinity);
  });

  it('should keep finished trials unchangeable and only start waiting trials', () => {
    const storage = open();
    const study = storage.createStudy('s', ['minimize']);
    const waiting = storage.createTrial(study, { state: 'waiting', params: { lr: 0.5 }, distributions: { lr: unit } });
    expect(storage.getTrial(waiting).datetimeStart).toBeUndefined();
    expect(storage.setTrialStateValues(waiting, 'running')).toBe(true);
    expect(storage.getTrial(waiting).datetimeStart).toBeInstanceOf(Date);
    // Another worker that also tried to start it is told it lost.
    expect(storage.setTrialStateValues(waiting, 'running')).toBe(false);
    const snapshot = storage.getTrial(waiting);
    storage.setTrialStateValues(waiting, 'pruned');
    expect(snapshot.state).toBe('running');
    for (const update of [
      () => storage.setTrialParam(waiting, 'lr', 0.1, unit),
      () => storage.setTrialStateValues(waiting, 'complete', [1]),
      () => storage.setTrialIntermediateValue(waiting, 3, 1),
      () => storage.setTrialUserAttr(waiting, 'k', 1),
      () => storage.setTrialSystemAttr(waiting, 'k', 1),
    ]) {
      const error = catchError(update);
      expect(error).toBeInstanceOf(StudyStorageError);
      expect(error.message).toMatch(/Trial 0 \(id \d+\) in .* is already pruned and cannot change/);
    }
    expect(catchError(() => storage.getTrial(9999))).toBeInstanceOf(StudyStorageError);
    expect(catchError(() => storage.getAllTrials(9999)).message).toContain('No study with id 9999');
  });

  it('should refuse values Optuna cannot store and distributions that change kind', () => {
    const storage = open();
    const study = storage.createStudy('s', ['minimize']);
    const first = storage.createTrial(study);
    storage.setTrialParam(first, 'activation', 'relu', activation);
    const second = storage.createTrial(study);
    expect(catchError(() => storage.setTrialParam(second, 'activation', 0.5, unit)).message).toMatch(
      /Parameter "activation" was categorical \["relu","gelu",2,true\] in earlier trials .* and is now float/,
    );
    expect(catchError(() => storage.setTrialParam(second, 'activation', 'relu', { kind: 'categorical', choices: ['relu'] }))).toBeInstanceOf(ConfigError);
    expect(catchError(() => storage.setTrialParam(second, 'activation', 'tanh', activation)).message).toContain('"tanh" is not one of the choices');
    expect(catchError(() => storage.setTrialStateValues(second, 'complete', [Number.NaN])).message).toContain('NaN objective value');
    expect(catchError(() => storage.setTrialStateValues(second, 'complete', [1, 2])).message).toContain('got 2 values for a study with 1 objectives');
    expect(catchError(() => storage.setTrialIntermediateValue(second, -1, 0)).message).toContain('steps are integers >= 0');
    expect(storage.getTrial(second)).toMatchObject({ state: 'running', params: {}, values: undefined });
  });

  it('should write a trial from a template whole or not at all', () => {
    const storage = open();
    const study = storage.createStudy('s', ['minimize']);
    const bad = () =>
      storage.createTrial(study, {
        state: 'complete',
        values: [1],
        params: { lr: 0.5, activation: 'tanh' },
        distributions: { lr: unit, activation },
        userAttrs: { note: 'x' },
      });
    expect(catchError(bad)).toBeInstanceOf(ConfigError);
    for (const table of ['trials', 'trial_params', 'trial_values', 'trial_user_attributes']) expect(rows(`SELECT * FROM ${table}`)).toEqual([]);

    const start = new Date(2026, 0, 1, 12, 0, 0, 250);
    const id = storage.createTrial(study, {
      state: 'complete',
      values: [1],
      params: { lr: 0.5 },
      distributions: { lr: unit },
      intermediateValues: new Map([[4, 0.5]]),
      systemAttrs: { constraints: [-1, 0.5] },
      datetimeStart: start,
    });
    const trial = storage.getTrial(id);
    expect(trial).toMatchObject({ number: 0, state: 'complete', values: [1], params: { lr: 0.5 }, constraints: [-1, 0.5], datetimeStart: start });
    expect(trial.datetimeComplete).toBeInstanceOf(Date);
  });

  it('should delete a study with every row of its trials, leaving other studies alone', () => {
    const storage = open();
    const kept = storage.createStudy('kept', ['minimize']);
    const gone = storage.createStudy('gone', ['minimize']);
    for (const study of [kept, gone]) {
      const trial = storage.createTrial(study);
      storage.setTrialParam(trial, 'lr', 0.5, unit);
      storage.setTrialIntermediateValue(trial, 0, 1);
      storage.setTrialUserAttr(trial, 'a', 1);
      storage.setTrialSystemAttr(trial, 'b', 2);
      storage.setTrialStateValues(trial, 'complete', [1]);
      storage.setStudyUserAttr(study, 'c', 3);
    }
    storage.deleteStudy(gone);
    expect(storage.getStudyIdFromName('gone')).toBeUndefined();
    for (const table of ['trial_params', 'trial_values', 'trial_intermediate_values', 'trial_user_attributes', 'trial_system_attributes', 'trials', 'study_user_attributes']) {
      expect(rows(`SELECT COUNT(*) AS n FROM ${table}`)).toEqual([{ n: 1 }]);
    }
    // The name is free again, and its parameter history went with it.
    const again = storage.createStudy('gone', ['maximize']);
    storage.setTrialParam(storage.createTrial(again), 'lr', 'relu', activation);
  });

  it('should let two storages on one file take distinct trial numbers', () => {
    const one = open();
    const two = open();
    const study = one.createStudy('shared', ['minimize']);
    const ids = [one.createTrial(study), two.createTrial(study), one.createTrial(study), two.createTrial(study)];
    expect(ids.map((id) => two.getTrial(id).number)).toEqual([0, 1, 2, 3]);
    // A parameter the other process recorded first still fixes the kind for this one.
    two.setTrialParam(ids[1] as number, 'lr', 0.5, unit);
    one.setTrialParam(ids[0] as number, 'activation', 'relu', activation);
    expect(catchError(() => two.setTrialParam(ids[3] as number, 'activation', 0.5, unit))).toBeInstanceOf(ConfigError);
  });

  it('should not serve a finished trial it read before when another process replaced it', () => {
    const reader = open();
    const writer = open();
    const old = writer.createStudy('old', ['minimize']);
    const oldTrial = writer.createTrial(old);
    writer.setTrialStateValues(oldTrial, 'complete', [1]);
    expect(reader.getAllTrials(old).map((trial) => trial.values)).toEqual([[1]]);
    // SQLite hands the freed trial id to the next trial after the delete.
    writer.deleteStudy(old);
    const fresh = writer.createStudy('fresh', ['minimize']);
    const freshTrial = writer.createTrial(fresh);
    expect(freshTrial).toBe(oldTrial);
    expect(reader.getTrial(freshTrial)).toMatchObject({ state: 'running', values: undefined });
    writer.setTrialStateValues(freshTrial, 'complete', [2]);
    expect(reader.getAllTrials(fresh).map((trial) => trial.values)).toEqual([[2]]);
    expect(reader.getTrial(freshTrial).values).toEqual([2]);
  });

  describe('resuming after a crash', () => {
    it('should find the study again with its trials, and fail the running trials a dead process left', () => {
      const crashed = open();
      const study = crashed.createStudy('resume', ['minimize']);
      const done = crashed.createTrial(study);
      crashed.setTrialStateValues(done, 'complete', [0.5]);
      const abandoned = crashed.createTrial(study);
      crashed.setTrialParam(abandoned, 'lr', 0.5, unit);
      // The process dies here: no close, the trial stays running.

      const resumed = open();
      const id = resumed.getStudyIdFromName('resume') as number;
      expect(resumed.getAllTrials(id).map((trial) => [trial.number, trial.state, trial.params])).toEqual([
        [0, 'complete', {}],
        [1, 'running', { lr: 0.5 }],
      ]);
      // A trial that showed life within the grace period may belong to a live worker.
      expect(resumed.getStaleTrials(id)).toEqual([]);
      const db = new Database(file);
      db.prepare("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-2 minutes')").run();
      db.close();
      expect(resumed.getStaleTrials(id).map((trial) => trial.number)).toEqual([1]);
      const failed = resumed.failStaleTrials(id);
      expect(failed.map((trial) => [trial.number, trial.state])).toEqual([[1, 'failed']]);
      expect(failed[0]?.datetimeComplete).toBeInstanceOf(Date);
      expect(resumed.failStaleTrials(id)).toEqual([]);
      // Numbering goes on where it stopped.
      expect(resumed.getTrial(resumed.createTrial(id)).number).toBe(2);
    });

    it('should re-run the configuration a killed process left running when the study is resumed, once', () => {
      const space = { lr: { kind: 'float', low: 1e-4, high: 1e-1, log: true }, method: activation } as const;
      const crashed = createStudy({ directions: ['minimize'], storage: open(), studyName: 'pipeline', sampler: new RandomSampler({ seed: 1 }) });
      crashed.tell(crashed.ask(space), 0.5);
      const interrupted = crashed.ask(space);
      interrupted.setUserAttr('plan', 'int8');
      // The process dies here, leaving trial #1 running in the file.

      const resume = (): ReturnType<typeof createStudy> =>
        createStudy({ directions: ['minimize'], storage: open(), studyName: 'pipeline', loadIfExists: true, sampler: new RandomSampler({ seed: 2 }) });
      const resumed = resume();
      expect(resumed.trials.map((trial) => [trial.number, trial.state])).toEqual([
        [0, 'complete'],
        [1, 'failed'],
        [2, 'waiting'],
      ]);
      expect(rows("SELECT number, state FROM trials WHERE state != 'COMPLETE' ORDER BY number")).toEqual([
        { number: 1, state: 'FAIL' },
        { number: 2, state: 'WAITING' },
      ]);
      // Resuming again (say the second process died before asking) queues nothing more.
      expect(resume().trials).toHaveLength(3);
      const rerun = resume().ask(space);
      expect(rerun.number).toBe(2);
      expect(rerun.params).toEqual(interrupted.params);
      expect(rerun.userAttrs).toEqual({ plan: 'int8' });
    });

    it('should count a running trial without heartbeat (a Python process without heartbeats) from its start', () => {
      const storage = open();
      const study = storage.createStudy('python', ['minimize']);
      const trial = storage.createTrial(study);
      const db = new Database(file);
      db.prepare('DELETE FROM trial_heartbeats').run();
      db.prepare("UPDATE trials SET datetime_start = datetime('now', 'localtime', '-10 seconds')").run();
      db.close();
      expect(storage.getStaleTrials(study, { graceMs: 60_000 })).toEqual([]);
      expect(storage.getStaleTrials(study, { graceMs: 5_000 }).map((stale) => stale.trialId)).toEqual([trial]);
    });

    it('should leave no trace of a write transaction cut short by a killed process', () => {
      const storage = open();
      const study = storage.createStudy('killed', ['minimize']);
      storage.createTrial(study);
      // A process that is killed in the middle of writing a trial (after its rows, before commit).
      const packageDir = fileURLToPath(new URL('..', import.meta.url));
      const script = `
        const Database = require('better-sqlite3');
        const db = new Database(process.argv[1]);
        db.exec("BEGIN IMMEDIATE; INSERT INTO trials (number, study_id, state) VALUES (1, ${study}, 'RUNNING');");
        db.exec("INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (last_insert_rowid(), 'lr', 0.5, '{}')");
        process.kill(process.pid, 'SIGKILL');`;
      const killed = catchError(() => execFileSync(process.execPath, ['-e', script, file], { cwd: packageDir, stdio: 'pipe' })) as Error & { signal?: string };
      expect(killed.signal).toBe('SIGKILL');
      storage.close();
      const reopened = open();
      expect(reopened.getAllTrials(study).map((trial) => trial.number)).toEqual([0]);
      expect(rows('SELECT * FROM trial_params')).toEqual([]);
    });
  });

  describe('opening files', () => {
    it('should open an empty file as a new study database', () => {
      writeFileSync(file, '');
      expect(open().getAllStudies()).toEqual([]);
      expect(rows('SELECT version_num FROM alembic_version')).toEqual([{ version_num: 'v3.0.0.d' }]);
    });

    it('should refuse a file that is not an SQLite database, naming it', () => {
      writeFileSync(file, 'study,value\nfirst,1\n'.repeat(100));
      const error = catchError(() => SqliteStorage.open(file));
      expect(error).toBeInstanceOf(StudyStorageError);
      expect((error as StudyStorageError).file).toBe(file);
      expect(error.message).toContain(`${file} is not a readable SQLite database`);
    });

    it('should refuse a damaged database with one message', () => {
      const storage = open();
      const study = storage.createStudy('s', ['minimize']);
      for (let index = 0; index < 200; index += 1) storage.setTrialUserAttr(storage.createTrial(study), 'padding', 'x'.repeat(200));
      storage.close();
      const size = statSync(file).size;
      const handle = openSync(file, 'r+');
      // Overwrite everything after the first page (the schema) with garbage.
      writeSync(handle, Buffer.alloc(size - 4096, 0x5a), 0, size - 4096, 4096);
      closeSync(handle);
      const error = catchError(() => SqliteStorage.open(file));
      expect(error).toBeInstanceOf(StudyStorageError);
      expect(error.message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (is damaged|is not a readable SQLite database)`));
    });

    it('should refuse an SQLite database of something else, listing the missing tables', () => {
      const db = new Database(file);
      db.exec('CREATE TABLE studies (id INTEGER)');
      db.close();
      expect(catchError(() => SqliteStorage.open(file)).message).toContain('is an SQLite database but not an Optuna study database (missing tables: version_info, study_directions');
    });

    it('should refuse schema revisions it cannot read, saying how to upgrade older ones', () => {
      open().close();
      const db = new Database(file);
      db.exec("UPDATE alembic_version SET version_num = 'v2.6.0.a'");
      expect(catchError(() => SqliteStorage.open(file)).message).toContain(`optuna storage upgrade --storage sqlite:///${file}`);
      db.exec("UPDATE alembic_version SET version_num = 'v9.0.0.a'");
      expect(catchError(() => SqliteStorage.open(file)).message).toContain('schema revision v9.0.0.a; this package reads v3.0.0.d and v3.2.0.a. It was written by a newer Optuna');
      db.close();
    });

    it('should refuse a missing file when told not to create it, and a directory', () => {
      expect(catchError(() => SqliteStorage.open(file, { create: false }))).toBeInstanceOf(FileAccessError);
      mkdirSync(join(dir, 'folder'));
      expect(catchError(() => SqliteStorage.open(join(dir, 'folder'))).message).toContain('is a directory');
    });

    it('should report a malformed row with the file, not crash later', () => {
      const storage = open();
      const study = storage.createStudy('s', ['minimize']);
      storage.setTrialParam(storage.createTrial(study), 'lr', 0.5, unit);
      const db = new Database(file);
      db.exec(`UPDATE trial_params SET distribution_json = '{"name": "BetaDistribution", "attributes": {}}'`);
      db.close();
      const error = catchError(() => storage.getAllTrials(study));
      expect(error).toBeInstanceOf(StudyStorageError);
      expect(error.message).toContain('parameter "lr" has distribution');
    });

    it('should refuse use after close', () => {
      const storage = SqliteStorage.open(file);
      storage.close();
      expect(catchError(() => storage.getAllStudies()).message).toContain('is closed');
    });
  });
});
