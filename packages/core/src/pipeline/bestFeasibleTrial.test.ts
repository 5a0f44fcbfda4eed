import { describe, expect, it } from 'vitest';
import { frozenTrial } from '../testing/frozenTrial.js';
import { bestFeasibleTrial } from './bestFeasibleTrial.js';

// accuracy (bounded, maximized), latency (the primary metric: the first without a bound), size.
const plan = { metrics: ['accuracy', 'latency', 'size'], directions: ['maximize', 'minimize', 'minimize'], primaryMetric: 'latency' } as const;

describe('bestFeasibleTrial', () => {
  it('should take the feasible trial best on the primary metric', () => {
    const trials = [frozenTrial(0, [0.9, 2, 10]), frozenTrial(1, [0.89, 1, 10]), frozenTrial(2, [0.99, 0.5, 1], [0.1]), frozenTrial(3, undefined, [], 'failed')];
    expect(bestFeasibleTrial(trials, plan)?.number).toBe(1);
  });

  it('should not pick a dominated trial on a tie of the primary metric', () => {
    // Trial 0 ties trial 1 on latency but is larger at the same accuracy: trial 1 dominates it.
    expect(bestFeasibleTrial([frozenTrial(0, [0.9, 1, 10]), frozenTrial(1, [0.9, 1, 5])], plan)?.number).toBe(1);
  });

  it('should break a tie between Pareto-optimal trials by the other objectives in config order, then by the earlier trial', () => {
    // Same latency; 0 is more accurate, 1 smaller: accuracy comes first in the config.
    expect(bestFeasibleTrial([frozenTrial(0, [0.9, 1, 10]), frozenTrial(1, [0.89, 1, 5])], plan)?.number).toBe(0);
    expect(bestFeasibleTrial([frozenTrial(0, [0.89, 1, 5]), frozenTrial(1, [0.9, 1, 10])], plan)?.number).toBe(1);
    expect(bestFeasibleTrial([frozenTrial(0, [0.9, 1, 5]), frozenTrial(1, [0.9, 1, 5])], plan)?.number).toBe(0);
  });

  it('should return undefined when no trial is feasible', () => {
    expect(bestFeasibleTrial([frozenTrial(0, [0.5, 1, 1], [0.3])], plan)).toBeUndefined();
  });
});
