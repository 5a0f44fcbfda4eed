import { describe, expect, it } from 'vitest';
import { parsePythonLiteral, PythonLiteralSyntaxError } from './pythonLiteral.js';

describe('parsePythonLiteral', () => {
  it('should parse a numpy header dict with its trailing comma and padding', () => {
    const value = parsePythonLiteral("{'descr': '<f4', 'fortran_order': False, 'shape': (2000, 1, 28, 28), }   \n");
    expect(value).toEqual(
      new Map<string, unknown>([
        ['descr', '<f4'],
        ['fortran_order', false],
        ['shape', [2000, 1, 28, 28]],
      ]),
    );
  });

  it('should follow Python tuple rules: (5,) is a tuple, (5) is 5, () is empty', () => {
    expect(parsePythonLiteral('(5,)')).toEqual([5]);
    expect(parsePythonLiteral('(5)')).toBe(5);
    expect(parsePythonLiteral('()')).toEqual([]);
  });

  it('should read Python 2 longs, double quotes, escapes, lists and None', () => {
    expect(parsePythonLiteral('(10L, 3)')).toEqual([10, 3]);
    expect(parsePythonLiteral('"it\\\'s"')).toBe("it's");
    expect(parsePythonLiteral("[('a', '<f4'), None, True]")).toEqual([['a', '<f4'], null, true]);
  });

  it('should reject floats, unterminated text, trailing text and non-string keys', () => {
    for (const text of ['1.5', "{'a': 1", "'abc", '(1, 2) x', '{1: 2}', '9007199254740993', '']) {
      expect(() => parsePythonLiteral(text), text).toThrow(PythonLiteralSyntaxError);
    }
  });
});
