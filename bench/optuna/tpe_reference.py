"""Python Optuna's TPE on the search benchmark's single-objective problems (bench-only; the product has no Python).

Run with Debian's python3-optuna 3.1.0:

  /usr/bin/python3 bench/optuna/tpe_reference.py [--trials 200] [--seeds 1-10,101-140]
      [--problems branin,hartmann6,rosenbrock5,ackley10] [--out bench/results/search-tpe-optuna.json]

Runs optuna.samplers.TPESampler(seed=s) with its defaults (univariate, 10 start-up trials, 24 EI
candidates), one study per problem and seed, and prints per problem the median and quartiles of
the best value over each seed range, so that bench/search.ts's TPE can be compared with Optuna's
over many seeds rather than the ten the issue's targets were measured on. The problems repeat
bench/problems/singleObjectiveProblems.ts (same domains, same formulas); --out writes every
run's best value as JSON (atomically: a temp file renamed over the target).
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x):
    x1, x2 = x
    b = 5.1 / (4 * math.pi * math.pi)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


HARTMANN_ALPHA = [1.0, 1.2, 3.0, 3.2]
HARTMANN_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
HARTMANN_P = [
    [v * 1e-4 for v in row]
    for row in [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        inner = sum(HARTMANN_A[i][j] * (x[j] - HARTMANN_P[i][j]) ** 2 for j in range(6))
        total += HARTMANN_ALPHA[i] * math.exp(-inner)
    return -total


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def ackley(x):
    d = len(x)
    squares = sum(v * v for v in x)
    cosines = sum(math.cos(2 * math.pi * v) for v in x)
    return -20 * math.exp(-0.2 * math.sqrt(squares / d)) - math.exp(cosines / d) + 20 + math.e


PROBLEMS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6),
    "rosenbrock5": (rosenbrock, [(-5.0, 10.0)] * 5),
    "ackley10": (ackley, [(-32.768, 32.768)] * 10),
}


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part:
            first, last = part.split("-")
            seeds.extend(range(int(first), int(last) + 1))
        else:
            seeds.append(int(part))
    return seeds


def best_value(name, seed, trials):
    function, bounds = PROBLEMS[name]
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    # Parameter names x0, x1, ... suggested in order, as bench/search.ts does.
    study.optimize(lambda trial: function([trial.suggest_float(f"x{i}", low, high) for i, (low, high) in enumerate(bounds)]), n_trials=trials)
    return study.best_value


def quartiles(values):
    ordered = sorted(values)
    q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else (ordered[0],) * 3
    return {"q1": q1, "median": statistics.median(ordered), "q3": q3, "mean": statistics.fmean(ordered)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seeds", default="1-10,101-140", help="comma-separated seeds and ranges; the summary groups them by range")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    ranges = args.seeds.split(",")
    problems = args.problems.split(",")
    for name in problems:
        if name not in PROBLEMS:
            sys.exit(f"unknown problem {name!r}: choose among {', '.join(PROBLEMS)}")
    runs = {}
    summary = {}
    for name in problems:
        runs[name] = {}
        summary[name] = {}
        for seed_range in ranges:
            values = []
            for seed in parse_seeds(seed_range):
                started = time.process_time()
                value = best_value(name, seed, args.trials)
                runs[name][str(seed)] = {"best": value, "cpuMsPerTrial": 1000 * (time.process_time() - started) / args.trials}
                values.append(value)
            summary[name][seed_range] = quartiles(values)
            s = summary[name][seed_range]
            print(f"optuna {optuna.__version__} TPE {name} @{args.trials} seeds {seed_range}: median {s['median']:.6g} (q1 {s['q1']:.6g}, q3 {s['q3']:.6g}, mean {s['mean']:.6g})", flush=True)
    if args.out is not None:
        report = {
            "benchmark": "search-tpe-optuna",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"platform": platform.platform(), "cores": os.cpu_count()},
            "versions": {"python": platform.python_version(), "optuna": optuna.__version__},
            "sampler": "optuna.samplers.TPESampler(seed=seed), defaults",
            "trials": args.trials,
            "summary": summary,
            "runs": runs,
        }
        folder = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates it private
        os.replace(handle.name, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
