import { describe, expect, it } from 'vitest';

import { formatPythonFloat, formatPythonJson, parsePythonJson } from './pythonJson.js';

describe('parsePythonJson', () => {
  it("should read Python's NaN, Infinity and -Infinity tokens outside strings", () => {
    const value = parsePythonJson('{"a": NaN, "b": [Infinity, -Infinity, 1.5e3], "c": "NaN and Infinity"}') as Record<string, unknown>;
    expect(value.a).toBeNaN();
    expect(value.b).toEqual([Infinity, -Infinity, 1500]);
    expect(value.c).toBe('NaN and Infinity');
  });

  it('should read what JSON.parse reads, with the same values', () => {
    const text = '{"s": "quote \\" backslash \\\\ \\u00e9 \\n", "n": -0.1, "t": true, "f": false, "z": null, "e": {}, "l": [], "__proto__": 1}';
    expect(parsePythonJson(text)).toEqual(JSON.parse(text));
    expect(Object.keys(parsePythonJson(text) as object)).toContain('__proto__');
  });

  it('should reject text that is not JSON, naming the position', () => {
    expect(() => parsePythonJson('{"a": nan}')).toThrow(/position 6/);
    expect(() => parsePythonJson('[1, 2')).toThrow(SyntaxError);
    expect(() => parsePythonJson('1 2')).toThrow(/after the value/);
    expect(() => parsePythonJson('')).toThrow(SyntaxError);
  });
});

describe('formatPythonJson', () => {
  it("should write json.dumps' separators and non-finite tokens", () => {
    expect(formatPythonJson({ a: [1, 'x'], b: { c: null, d: true }, e: Number.NaN, f: -Infinity })).toBe('{"a": [1, "x"], "b": {"c": null, "d": true}, "e": NaN, "f": -Infinity}');
  });

  it('should round-trip through parsePythonJson', () => {
    const value = { text: 'é "q" \\', list: [Infinity, 0.1, -2, false], nested: { deep: [[]] } };
    expect(parsePythonJson(formatPythonJson(value))).toEqual(value);
  });
});

describe('formatPythonFloat', () => {
  it("should write integral numbers as Python's float repr does", () => {
    expect([1, -1, 0, -0, 1e15, 0.25, 1e-5, 1e16].map(formatPythonFloat)).toEqual(['1.0', '-1.0', '0.0', '-0.0', '1000000000000000.0', '0.25', '0.00001', '10000000000000000']);
  });
});
