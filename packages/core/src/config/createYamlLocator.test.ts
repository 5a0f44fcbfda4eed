import { LineCounter, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createYamlLocator } from './createYamlLocator.js';

function locatorFor(text: string) {
  const lineCounter = new LineCounter();
  return createYamlLocator(parseDocument(text, { lineCounter }), lineCounter);
}

describe('createYamlLocator', () => {
  const locate = locatorFor(
    ['target:', '  device: cpu', '  threads: 2', 'passes:', '  - use: a', '  - { use: b, with: { ratio: 0.5 } }', 'output:'].join('\n'),
  );

  it('should find values in block and flow collections and list items', () => {
    expect(locate(['target', 'threads'])).toEqual({ line: 3, column: 12 });
    expect(locate(['passes', 1, 'with', 'ratio'])).toEqual({ line: 6, column: 30 });
    expect(locate(['passes', 1])).toEqual({ line: 6, column: 5 });
  });

  it('should find the key itself when asked', () => {
    expect(locate(['target', 'threads'], 'key')).toEqual({ line: 3, column: 3 });
    expect(locate(['passes', 1, 'with'], 'key')).toEqual({ line: 6, column: 15 });
  });

  it('should point at the nearest enclosing key for a missing key', () => {
    expect(locate(['target', 'batch'])).toEqual({ line: 1, column: 1 });
    expect(locate(['passes', 0, 'with', 'ratio'])).toEqual({ line: 5, column: 5 });
    expect(locate(['passes', 7])).toEqual({ line: 4, column: 1 });
  });

  it('should point at the key of a key without value', () => {
    expect(locate(['output'])).toEqual({ line: 7, column: 1 });
  });

  it('should follow aliases', () => {
    const withAlias = locatorFor(['base: &base', '  threads: 4', 'target: *base'].join('\n'));
    expect(withAlias(['target', 'threads'])).toEqual({ line: 2, column: 12 });
  });

  it('should find nothing in an empty document', () => {
    expect(locatorFor('')(['model'])).toBeUndefined();
  });
});
