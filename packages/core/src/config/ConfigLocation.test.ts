import { describe, expect, it } from 'vitest';
import { formatKeyPath } from './ConfigLocation.js';

describe('formatKeyPath', () => {
  it('should write keys with dots and indices with brackets', () => {
    expect(formatKeyPath(['passes', 1, 'with', 'ratio'])).toBe('passes[1].with.ratio');
    expect(formatKeyPath([0, 'metric'])).toBe('[0].metric');
  });

  it('should quote keys that are not identifiers', () => {
    expect(formatKeyPath(['data', 'val', 'x', 'input.ids'])).toBe('data.val.x["input.ids"]');
  });

  it('should name the root', () => {
    expect(formatKeyPath([])).toBe('(top level)');
  });
});
