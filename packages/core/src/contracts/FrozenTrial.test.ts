import { describe, expect, it } from 'vitest';
import { constraintsFromSystemAttrs, constraintsSystemAttrKey, isFinishedTrialState } from './FrozenTrial.js';
import { TrialPruned, isTrialPruned } from './TrialPruned.js';

describe('constraintsFromSystemAttrs', () => {
  it('should read the constraint values stored under Optuna\'s key', () => {
    expect(constraintsSystemAttrKey).toBe('constraints');
    expect(constraintsFromSystemAttrs({ constraints: [0.5, -1] })).toEqual([0.5, -1]);
  });

  it('should give undefined when the attribute is missing or not a list of numbers', () => {
    expect(constraintsFromSystemAttrs({})).toBeUndefined();
    expect(constraintsFromSystemAttrs({ constraints: 'x' })).toBeUndefined();
    expect(constraintsFromSystemAttrs({ constraints: [1, 'x'] })).toBeUndefined();
  });
});

describe('isFinishedTrialState', () => {
  it('should be true only for complete, pruned and failed', () => {
    expect(['complete', 'pruned', 'failed', 'running', 'waiting'].map((s) => isFinishedTrialState(s as never))).toEqual([true, true, true, false, false]);
  });
});

describe('TrialPruned', () => {
  it('should be recognised by name, also when made by another copy of core', () => {
    expect(isTrialPruned(new TrialPruned())).toBe(true);
    const foreign = new Error('pruned');
    foreign.name = 'TrialPruned';
    expect(isTrialPruned(foreign)).toBe(true);
    expect(isTrialPruned(new Error('boom'))).toBe(false);
  });
});
