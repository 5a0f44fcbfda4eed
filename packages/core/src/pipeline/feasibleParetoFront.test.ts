import { describe, expect, it } from 'vitest';
import { frozenTrial } from '../testing/frozenTrial.js';
import { feasibleParetoFront } from './feasibleParetoFront.js';

describe('feasibleParetoFront', () => {
  it('should keep the feasible complete trials no other one dominates (accuracy maximized, latency minimized)', () => {
    const trials = [
      frozenTrial(0, [0.92, 10]),
      frozenTrial(1, [0.91, 5]),
      frozenTrial(2, [0.9, 6]), // dominated by 1
      frozenTrial(3, [0.95, 1], [0.02]), // infeasible: ignored even though it dominates everything
      frozenTrial(4, undefined, [], 'failed'),
      frozenTrial(5, [0.92, 10]), // equal to 0: neither dominates the other
    ];
    expect(feasibleParetoFront(trials, ['maximize', 'minimize']).map((t) => t.number)).toEqual([0, 1, 5]);
  });
});
