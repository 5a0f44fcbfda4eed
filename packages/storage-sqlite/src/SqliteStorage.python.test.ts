import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { JsonValue, ParameterDistribution } from '@open-autoglm/core';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SqliteStorage } from './SqliteStorage.js';
import { canonicalStudies } from './test-support/canonicalStudies.js';
import { continueStudiesScript, dumpStudiesScript, failStaleTrialsScript, requirePythonOptuna, runPython, writeStudiesScript } from './test-support/pythonOptuna.js';

const every: Readonly<Record<string, ParameterDistribution>> = {
  x: { kind: 'float', low: -1, high: 1 },
  step_float: { kind: 'float', low: 0, high: 1, step: 0.25 },
  log_float: { kind: 'float', low: 1e-5, high: 1, log: true },
  int: { kind: 'int', low: -3, high: 7 },
  step_int: { kind: 'int', low: 0, high: 12, step: 3 },
  log_int: { kind: 'int', low: 1, high: 1024, log: true },
  choice: { kind: 'categorical', choices: ['relu', 'gelu', 3, 0.5, true, false, null] },
};

/** Writes, through the storage API, what Python must read back: both kinds of study, every state and distribution kind. */
function writeStudies(storage: SqliteStorage): void {
  const single = storage.createStudy('ts-single', ['minimize']);
  storage.setStudyUserAttr(single, 'owner', { team: 'search', tags: ['a', 'b'], ratio: 0.5 });
  storage.setStudyUserAttr(single, 'not-a-number', Number.NaN);
  storage.setStudySystemAttr(single, 'written-by', 'open-autoglm');

  const params = (trialId: number, values: Readonly<Record<string, number | string | boolean | null>>): void => {
    for (const [name, value] of Object.entries(values)) storage.setTrialParam(trialId, name, value, every[name] as ParameterDistribution);
  };
  const first = { x: 0.5, step_float: 0.75, log_float: 0.001, int: -3, step_int: 9, log_int: 64, choice: 'gelu' };

  const complete = storage.createTrial(single);
  params(complete, first);
  [0.9, Infinity, -Infinity, Number.NaN].forEach((value, step) => storage.setTrialIntermediateValue(complete, step, value));
  storage.setTrialUserAttr(complete, 'epochs', [1, 2, 3]);
  storage.setTrialUserAttr(complete, 'note', 'quote " backslash \\ unicode \u00e9 NaN');
  storage.setTrialSystemAttr(complete, 'constraints', [-0.1, -1]);
  storage.setTrialStateValues(complete, 'complete', [0.5]);

  const pruned = storage.createTrial(single);
  params(pruned, { ...first, x: -0.25, choice: 3, log_int: 1 });
  storage.setTrialIntermediateValue(pruned, 0, 2.5);
  storage.setTrialStateValues(pruned, 'pruned', [2.5]);

  const failed = storage.createTrial(single);
  params(failed, { x: 0.75, choice: true });
  storage.setTrialStateValues(failed, 'failed');

  const infinite = storage.createTrial(single);
  params(infinite, { ...first, x: 1, choice: false, step_float: 1, int: 7 });
  storage.setTrialSystemAttr(infinite, 'constraints', [0.5]);
  storage.setTrialStateValues(infinite, 'complete', [Infinity]);

  const running = storage.createTrial(single);
  params(running, { x: -1, choice: null });
  storage.setTrialIntermediateValue(running, 0, 0.125);

  storage.createTrial(single, { state: 'waiting', params: { x: 0 }, distributions: { x: every.x as ParameterDistribution }, systemAttrs: { fixed_params: { x: 0 } } });
  storage.createTrial(single, {
    state: 'complete',
    params: { ...first, x: 0.125 },
    distributions: every,
    values: [0.25],
    userAttrs: { source: 'evaluated elsewhere' },
    datetimeStart: new Date(2026, 0, 2, 3, 4, 5, 678),
    datetimeComplete: new Date(2026, 0, 2, 3, 14, 5, 9),
  });

  const multi = storage.createStudy('ts-multi', ['minimize', 'maximize']);
  const objectives: readonly (readonly number[] | 'failed')[] = [[1, 5], [2, 6], 'failed', [0.5, -Infinity], [3, 4]];
  for (const result of objectives) {
    const trial = storage.createTrial(multi);
    storage.setTrialParam(trial, 'a', 0.25, { kind: 'float', low: 0, high: 1 });
    storage.setTrialParam(trial, 'b', 3, { kind: 'int', low: 1, high: 5 });
    if (result === 'failed') storage.setTrialStateValues(trial, 'failed');
    else storage.setTrialStateValues(trial, 'complete', result);
  }
}

function schemaOf(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all();
  } finally {
    db.close();
  }
}

function pythonDump(dir: string, file: string): JsonValue {
  return JSON.parse(runPython(dir, 'dump_studies.py', dumpStudiesScript, [file])) as JsonValue;
}

function readWithStorage(file: string): JsonValue {
  const storage = SqliteStorage.open(file, { create: false });
  try {
    return canonicalStudies(storage);
  } finally {
    storage.close();
  }
}

describe('SqliteStorage with Python Optuna', () => {
  let dir: string;
  let pythonFile: string;

  beforeAll(() => {
    // Fails (never skips) when python3-optuna is missing, with the command that installs it.
    requirePythonOptuna();
    dir = mkdtempSync(join(tmpdir(), 'autoglm-optuna-'));
    pythonFile = join(dir, 'python.db');
    runPython(dir, 'write_studies.py', writeStudiesScript, [pythonFile]);
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('should write studies that Python Optuna loads with equal values, and can continue', () => {
    const file = join(dir, 'typescript.db');
    const storage = SqliteStorage.open(file);
    writeStudies(storage);
    const written = canonicalStudies(storage);
    // Python reads the file while it is still open here (rows still in the WAL, not checkpointed).
    expect(pythonDump(dir, file)).toEqual(written);
    storage.close();

    // Optuna computes the Pareto front from our rows, runs our waiting trial and one of its own
    // (with a categorical that has None among its choices) in the same file.
    const continued = JSON.parse(runPython(dir, 'continue_studies.py', continueStudiesScript, [file, 'ts-single', 'ts-multi'])) as Record<string, unknown>;
    expect(continued).toEqual({ ran: [5, 7], front: [0, 1, 3] });
    const afterPython = readWithStorage(file);
    expect(afterPython).toEqual(pythonDump(dir, file));
    const reopened = SqliteStorage.open(file);
    const single = reopened.getStudyIdFromName('ts-single') as number;
    const ranByPython = reopened.getAllTrials(single).filter((trial) => 'lr' in trial.params);
    reopened.close();
    expect(ranByPython.map((trial) => [trial.number, trial.state, Object.keys(trial.params).sort()])).toEqual([
      [5, 'complete', ['activation', 'lr', 'x']], // the waiting trial kept its fixed x
      [7, 'complete', ['activation', 'lr']],
    ]);
  });

  it('should read studies written by Python Optuna with equal values', () => {
    const fromPython = pythonDump(dir, pythonFile);
    expect(readWithStorage(pythonFile)).toEqual(fromPython);

    const storage = SqliteStorage.open(pythonFile, { create: false });
    const single = storage.getStudyIdFromName('python-single') as number;
    const trials = storage.getAllTrials(single);
    storage.close();
    expect(new Set(trials.map((trial) => trial.state))).toEqual(new Set(['complete', 'pruned', 'failed', 'running', 'waiting']));
    // Categorical values come back as the choices (None included), not as stored indices.
    expect(trials[0]?.params.choice).toBeNull();
    expect(trials[0]?.constraints).toEqual([-0.125, -1]);
    expect(trials[4]?.values).toEqual([Infinity]);
    expect(trials[0]?.intermediateValues.get(3)).toBeNaN();
  });

  it("should keep heartbeats that Optuna's fail_stale_trials understands", () => {
    const file = join(dir, 'heartbeats.db');
    const storage = SqliteStorage.open(file);
    const study = storage.createStudy('stale', ['minimize']);
    const abandoned = storage.createTrial(study);
    storage.setTrialParam(abandoned, 'x', 0.5, { kind: 'float', low: 0, high: 1 });
    const alive = storage.createTrial(study);
    storage.recordHeartbeat(alive);
    storage.close();
    // The process that ran trial 0 died three minutes ago; trial 1's worker is still beating.
    const db = new Database(file);
    db.prepare("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-3 minutes') WHERE trial_id = ?").run(abandoned);
    db.close();
    expect(JSON.parse(runPython(dir, 'fail_stale_trials.py', failStaleTrialsScript, [file, 'stale']))).toEqual([0]);
  });

  it('should create the very schema Optuna 3.1 creates, stamped v3.0.0.d', () => {
    const file = join(dir, 'empty.db');
    SqliteStorage.open(file).close();
    expect(schemaOf(file)).toEqual(schemaOf(pythonFile));
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT version_num FROM alembic_version').all()).toEqual([{ version_num: 'v3.0.0.d' }]);
    expect(db.prepare('SELECT * FROM version_info').all()).toEqual([{ version_info_id: 1, schema_version: 12, library_version: '3.1.0' }]);
    db.close();
  });

  it('should read a file upgraded to the schema of Optuna 3.2 and later (v3.2.0.a)', () => {
    const file = join(dir, 'upgraded.db');
    copyFileSync(pythonFile, file);
    // What `optuna storage upgrade` does to a v3.0.0.d file (alembic revision v3.2.0.a).
    const db = new Database(file);
    db.exec("CREATE INDEX trials_study_id_key ON trials (study_id); UPDATE alembic_version SET version_num = 'v3.2.0.a'");
    db.close();
    const storage = SqliteStorage.open(file, { create: false });
    expect(storage.alembicRevision).toBe('v3.2.0.a');
    storage.close();
    expect(readWithStorage(file)).toEqual(readWithStorage(pythonFile));
  });
});
