import { describe, expect, it } from 'vitest';
import { closestMatch } from './closestMatch.js';

describe('closestMatch', () => {
  const keys = ['model', 'data', 'target', 'objectives', 'search', 'passes', 'output'];

  it('should find a key with one letter wrong, missing, extra or swapped', () => {
    expect(closestMatch('modle', keys)).toBe('model');
    expect(closestMatch('pases', keys)).toBe('passes');
    expect(closestMatch('targett', keys)).toBe('target');
    expect(closestMatch('ouptut', keys)).toBe('output');
    expect(closestMatch('Objectives', keys)).toBe('objectives');
  });

  it('should prefer the closest of several candidates', () => {
    expect(closestMatch('threds', ['threads', 'thresholds'])).toBe('threads');
  });

  it('should suggest nothing when no candidate is close', () => {
    expect(closestMatch('batchSize', keys)).toBeUndefined();
    expect(closestMatch('x', ['y'])).toBeUndefined();
    expect(closestMatch('anything', [])).toBeUndefined();
  });
});
