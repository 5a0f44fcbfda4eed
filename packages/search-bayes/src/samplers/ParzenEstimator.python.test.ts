import { spawnSync } from 'node:child_process';
import { SeededRandom, type RelativeSearchSpace } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { ParzenEstimator, type ParzenEstimatorParameters } from './ParzenEstimator.js';
import { defaultWeights } from './TPESampler.js';

/**
 * The estimator against Python Optuna 3.1's own `_ParzenEstimator` (Debian's python3-optuna, which
 * CI installs for the storage round trips): same observations, same points, same log densities.
 * A missing Python Optuna is an error with the install command, never a skip.
 */
const python = process.env.AUTOGLM_PYTHON ?? '/usr/bin/python3';

const optunaLogPdfScript = String.raw`
import json, sys
import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_weights
request = json.load(sys.stdin)
space = {"a": FloatDistribution(-5, 10), "b": FloatDistribution(1e-3, 10, log=True), "c": IntDistribution(0, 60)}
answers = []
for case in request:
    parameters = _ParzenEstimatorParameters(True, 1.0, True, False, default_weights, case["multivariate"])
    estimator = _ParzenEstimator({k: np.asarray(v, dtype=float) for k, v in case["observations"].items()}, space, parameters)
    answers.append(estimator.log_pdf({k: np.asarray(v, dtype=float) for k, v in case["points"].items()}).tolist())
json.dump(answers, sys.stdout)
`;

const space: RelativeSearchSpace = { a: { kind: 'float', low: -5, high: 10 }, b: { kind: 'float', low: 1e-3, high: 10, log: true }, c: { kind: 'int', low: 0, high: 60 } };

/** `count` values of each parameter; the integers distinct, since numpy's argsort orders tied kernels its own way. */
function draw(random: SeededRandom, count: number): Record<string, number[]> {
  const integers = Array.from({ length: 61 }, (_, i) => i);
  for (let i = integers.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [integers[i], integers[j]] = [integers[j] as number, integers[i] as number];
  }
  return {
    a: Array.from({ length: count }, () => random.nextFloatIn(-5, 10)),
    b: Array.from({ length: count }, () => Math.exp(random.nextFloatIn(Math.log(1e-3), Math.log(10)))),
    c: integers.slice(0, count),
  };
}

describe('ParzenEstimator against Python Optuna 3.1', () => {
  it('should give the log densities of Optuna 3.1 (univariate and multivariate, with and without the weight ramp)', () => {
    const random = new SeededRandom(7);
    // 40 observations: the 15 oldest on the ramp of defaultWeights.
    const cases = [
      { multivariate: false, n: 5 },
      { multivariate: false, n: 40 },
      { multivariate: true, n: 5 },
      { multivariate: true, n: 40 },
    ].map(({ multivariate, n }) => ({ multivariate, observations: draw(random, n), points: draw(random, 30) }));
    const run = spawnSync(python, ['-c', optunaLogPdfScript], { input: JSON.stringify(cases), encoding: 'utf8' });
    if (run.status !== 0 || run.error !== undefined) {
      throw new Error(
        `Python Optuna (${python}) could not score the estimator cases: ${run.error?.message ?? run.stderr.trim().split('\n').at(-1) ?? 'unknown error'}. ` +
          'Install it with `apt-get install -y python3-optuna`, or point AUTOGLM_PYTHON at a Python that has optuna 3.1.',
      );
    }
    const expected = JSON.parse(run.stdout) as number[][];
    cases.forEach((testCase, k) => {
      const parameters: ParzenEstimatorParameters = { priorWeight: 1, considerMagicClip: true, considerEndpoints: false, weights: defaultWeights, multivariate: testCase.multivariate };
      const toColumns = (columns: Record<string, number[]>): Record<string, Float64Array> => Object.fromEntries(Object.entries(columns).map(([name, values]) => [name, Float64Array.from(values)]));
      const ours = new ParzenEstimator(toColumns(testCase.observations), space, parameters).logPdf(toColumns(testCase.points));
      expect(ours.length, `case ${k}`).toBe(expected[k]?.length);
      ours.forEach((value, i) => expect(value, `case ${k}, point ${i}`).toBeCloseTo(expected[k]?.[i] ?? Number.NaN, 9));
    });
  });
});
