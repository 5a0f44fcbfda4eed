import { describe, expect, it } from 'vitest';
import type { FrozenTrial } from '../contracts/FrozenTrial.js';
import { feasibleParetoFront } from './feasibleParetoFront.js';

function trial(number: number, values: number[] | undefined, constraints: number[] = [], state: FrozenTrial['state'] = 'complete'): FrozenTrial {
  return {
    number,
    trialId: number,
    state,
    values,
    params: {},
    distributions: {},
    intermediateValues: new Map(),
    userAttrs: {},
    systemAttrs: {},
    constraints,
    datetimeStart: undefined,
    datetimeComplete: undefined,
  };
}

describe('feasibleParetoFront', () => {
  it('should keep the feasible complete trials no other one dominates (accuracy maximized, latency minimized)', () => {
    const trials = [
      trial(0, [0.92, 10]),
      trial(1, [0.91, 5]),
      trial(2, [0.9, 6]), // dominated by 1
      trial(3, [0.95, 1], [0.02]), // infeasible: ignored even though it dominates everything
      trial(4, undefined, [], 'failed'),
      trial(5, [0.92, 10]), // equal to 0: neither dominates the other
    ];
    expect(feasibleParetoFront(trials, ['maximize', 'minimize']).map((t) => t.number)).toEqual([0, 1, 5]);
  });
});
