import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs Python Optuna (Debian's python3-optuna 3.1) on study files, for the round-trip tests. The
 * tests must not pass without it, so a missing Python or Optuna is an error with the install
 * command, never a skip.
 */

export const pythonExecutable = process.env.AUTOGLM_PYTHON ?? '/usr/bin/python3';

/** The version of Optuna `pythonExecutable` imports; throws with the install command when it cannot. */
export function requirePythonOptuna(): string {
  const probe = spawnSync(pythonExecutable, ['-c', 'import optuna; print(optuna.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0 || probe.error !== undefined) {
    const reason = probe.error?.message ?? probe.stderr.trim().split('\n').at(-1) ?? 'unknown error';
    throw new Error(
      `The Optuna round-trip tests need Python Optuna in ${pythonExecutable} (${reason}). ` +
        'Install it with `apt-get install -y python3-optuna` (CI does so in .ci/run), or point AUTOGLM_PYTHON at a Python that has optuna.',
    );
  }
  return probe.stdout.trim();
}

/** Writes `script` to `dir` and runs it with `args`; returns its stdout (stderr is discarded unless it fails). */
export function runPython(dir: string, name: string, script: string, args: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, script);
  try {
    return execFileSync(pythonExecutable, [path, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${name} failed:\n${stderr}`, { cause: error });
  }
}

/**
 * Prints every study of the database (argv[1]) as loaded by `optuna.load_study`, in the canonical
 * form of `canonicalStudies` on the TypeScript side: non-finite numbers as strings, datetimes as
 * local `YYYY-MM-DD HH:MM:SS.mmm`, distributions as the parsed JSON of `distribution_to_json`.
 */
export const dumpStudiesScript = String.raw`
import json, math, sys
import optuna
from optuna.distributions import distribution_to_json

optuna.logging.set_verbosity(optuna.logging.ERROR)
url = "sqlite:///" + sys.argv[1]
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}

def plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value

def when(moment):
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (moment.microsecond // 1000)

studies = []
storage = optuna.storages.RDBStorage(url)
for frozen in sorted(storage.get_all_studies(), key=lambda s: s._study_id):
    study = optuna.load_study(study_name=frozen.study_name, storage=storage)
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append({
            "number": t.number,
            "state": STATES[t.state.name],
            "values": t.values,
            "params": t.params,
            "distributions": {k: json.loads(distribution_to_json(d)) for k, d in t.distributions.items()},
            "intermediateValues": {str(k): v for k, v in t.intermediate_values.items()},
            "userAttrs": t.user_attrs,
            "systemAttrs": t.system_attrs,
            "datetimeStart": when(t.datetime_start),
            "datetimeComplete": when(t.datetime_complete),
        })
    studies.append({
        "name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "userAttrs": study.user_attrs,
        "systemAttrs": frozen.system_attrs,
        "trials": trials,
    })
print(json.dumps(plain(studies), allow_nan=False))
`;

/**
 * Writes, with Python Optuna, a study file (argv[1]) covering what the storage must read: a
 * single-objective study with every distribution kind (categorical of strings, numbers, bools and
 * None), complete / pruned / failed / running / waiting trials, infinite and NaN intermediate
 * values, an infinite objective value, user and system attributes and constraints; and a
 * two-objective study with a failed trial.
 */
export const writeStudiesScript = String.raw`
import math, sys
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
url = "sqlite:///" + sys.argv[1]

sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=3, constraints_func=lambda t: [t.params["x"] - 0.25, -1.0])
single = optuna.create_study(study_name="python-single", storage=url, sampler=sampler, direction="minimize")
single.set_user_attr("owner", {"team": "search", "tags": ["a", "b"], "ratio": 0.5})
single.set_user_attr("not-a-number", float("nan"))

def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.suggest_float("step_float", 0.0, 1.0, step=0.25)
    trial.suggest_float("log_float", 1e-5, 1.0, log=True)
    trial.suggest_int("int", -3, 7)
    trial.suggest_int("step_int", 0, 12, step=3)
    trial.suggest_int("log_int", 1, 1024, log=True)
    trial.suggest_categorical("choice", ["relu", "gelu", 3, 0.5, True, False, None])
    trial.set_user_attr("epochs", [1, 2, 3])
    trial.set_user_attr("note", 'quote " backslash \\ unicode \u00e9 NaN')
    trial.report(x * 2.0, 0)
    trial.report(float("inf"), 1)
    trial.report(float("-inf"), 2)
    trial.report(float("nan"), 3)
    if trial.number == 2:
        raise optuna.TrialPruned()
    if trial.number == 3:
        raise RuntimeError("objective failed")
    if trial.number == 4:
        return float("inf")
    return x * x

single.enqueue_trial({"x": 0.125, "choice": None})
single.optimize(objective, n_trials=7, catch=(RuntimeError,))
single.enqueue_trial({"x": -0.5}, user_attrs={"queued": True})
running = single.ask()
running.suggest_float("x", -1.0, 1.0)
running.report(0.75, 0)
single.enqueue_trial({"x": 0.0, "int": 2})

multi = optuna.create_study(study_name="python-multi", storage=url, directions=["minimize", "maximize"], sampler=optuna.samplers.NSGAIISampler(seed=3))
def two(trial):
    a = trial.suggest_float("a", 0.0, 1.0)
    b = trial.suggest_int("b", 1, 5)
    if trial.number == 1:
        raise RuntimeError("objective failed")
    return a * b, float("-inf") if trial.number == 2 else a + b
multi.optimize(two, n_trials=5, catch=(RuntimeError,))
`;

/**
 * Opens a study file (argv[1]) written by the TypeScript storage and continues its single-objective
 * study argv[2] for two trials with Optuna's TPE sampler (the first takes the waiting trial off the
 * queue), so the file is proven writable by Optuna as well; reads the Pareto front of the
 * two-objective study argv[3]. Prints `{"ran": [<numbers>], "front": [<numbers>]}`.
 * (Optuna 3.1's `best_trial` on SQLite ranks a trial of value +inf first, as its stored value is
 * NULL, so the best trial is not compared.)
 */
export const continueStudiesScript = String.raw`
import json, sys
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
url = "sqlite:///" + sys.argv[1]
single = optuna.load_study(study_name=sys.argv[2], storage=url, sampler=optuna.samplers.TPESampler(seed=1))
multi = optuna.load_study(study_name=sys.argv[3], storage=url)

def objective(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    trial.suggest_categorical("activation", ["relu", "gelu", 7, 0.5, True, None])
    trial.report(lr, 0)
    return lr

single.optimize(objective, n_trials=2)
print(json.dumps({
    "ran": [t.number for t in single.trials if "lr" in t.params and t.state.name == "COMPLETE"],
    "front": sorted(t.number for t in multi.best_trials),
}))
`;

/**
 * Runs Optuna's own `fail_stale_trials` on study argv[2] of the file argv[1], with heartbeats
 * enabled (interval 60 s, so a trial silent for more than 120 s is stale). Prints the numbers of
 * the trials that are failed afterwards.
 */
export const failStaleTrialsScript = String.raw`
import json, sys
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
storage = optuna.storages.RDBStorage("sqlite:///" + sys.argv[1], heartbeat_interval=60)
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
optuna.storages.fail_stale_trials(study)
print(json.dumps([t.number for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"]))
`;
