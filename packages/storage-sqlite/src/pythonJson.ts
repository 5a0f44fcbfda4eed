import type { JsonValue } from '@open-autoglm/core';

/**
 * JSON as Python's `json` module writes and reads it. Optuna stores attributes with `json.dumps`,
 * which writes the non-standard tokens `NaN`, `Infinity` and `-Infinity` for non-finite floats;
 * `JSON.parse` rejects them and `JSON.stringify` turns them into `null`. These two functions keep
 * them, so a NaN a Python objective stored in a user attribute survives a round trip.
 */

/** Parses JSON that may contain Python's `NaN`, `Infinity` and `-Infinity`; throws `SyntaxError` otherwise. */
export function parsePythonJson(text: string): JsonValue {
  // Standard JSON (nearly every stored value) takes JSON.parse's native path.
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    // NaN / Infinity tokens, or not JSON at all: the reader below tells which, and where.
  }
  const parser = new PythonJsonParser(text);
  const value = parser.parseValue();
  parser.expectEnd();
  return value;
}

/**
 * Writes `value` as `json.dumps` does by default (`", "` and `": "` separators, non-finite
 * numbers as `NaN` / `Infinity` / `-Infinity`). Python's `json.loads` reads it back exactly.
 */
export function formatPythonJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return formatPythonNumber(value);
  if (isJsonArray(value)) return `[${value.map(formatPythonJson).join(', ')}]`;
  const members = Object.entries(value).map(([key, member]) => `${JSON.stringify(key)}: ${formatPythonJson(member)}`);
  return `{${members.join(', ')}}`;
}

/**
 * A number as a Python float literal (`1.0`, not `1`), so that `json.loads` gives a `float` where
 * Optuna expects one (distribution bounds). Non-finite values use Python's tokens.
 */
export function formatPythonFloat(value: number): string {
  // Python's repr switches to exponent notation at 1e16; below it, integral floats end in ".0".
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return Object.is(value, -0) ? '-0.0' : `${value}.0`;
  return formatPythonNumber(value);
}

function formatPythonNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return JSON.stringify(value);
}

function isJsonArray(value: JsonValue): value is readonly JsonValue[] {
  return Array.isArray(value);
}

const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const stringPattern = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const whitespacePattern = /[ \t\n\r]*/y;

// A small recursive-descent reader; strings and numbers are decoded by JSON.parse itself so their
// semantics (escapes, rounding) are exactly the standard's.
class PythonJsonParser {
  private position = 0;

  constructor(private readonly text: string) {}

  parseValue(): JsonValue {
    this.skipWhitespace();
    const char = this.text[this.position];
    if (char === '{') return this.parseObject();
    if (char === '[') return this.parseArray();
    if (char === '"') return this.parseString();
    for (const [literal, value] of pythonLiterals) {
      if (this.text.startsWith(literal, this.position)) {
        this.position += literal.length;
        return value;
      }
    }
    return this.parseNumber();
  }

  expectEnd(): void {
    this.skipWhitespace();
    if (this.position < this.text.length) this.fail('unexpected text after the value');
  }

  private parseObject(): JsonValue {
    this.position += 1;
    const result: Record<string, JsonValue> = {};
    this.skipWhitespace();
    if (this.text[this.position] === '}') {
      this.position += 1;
      return result;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.position] !== '"') this.fail('expected a string key');
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text[this.position] !== ':') this.fail("expected ':'");
      this.position += 1;
      // defineProperty so a key named "__proto__" stays an ordinary member.
      Object.defineProperty(result, key, { value: this.parseValue(), enumerable: true, writable: true, configurable: true });
      this.skipWhitespace();
      const separator = this.text[this.position];
      this.position += 1;
      if (separator === '}') return result;
      if (separator !== ',') this.fail("expected ',' or '}'");
    }
  }

  private parseArray(): JsonValue {
    this.position += 1;
    const result: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.position] === ']') {
      this.position += 1;
      return result;
    }
    for (;;) {
      result.push(this.parseValue());
      this.skipWhitespace();
      const separator = this.text[this.position];
      this.position += 1;
      if (separator === ']') return result;
      if (separator !== ',') this.fail("expected ',' or ']'");
    }
  }

  private parseString(): string {
    return JSON.parse(this.match(stringPattern, 'a string')) as string;
  }

  private parseNumber(): number {
    return JSON.parse(this.match(numberPattern, 'a value')) as number;
  }

  private match(pattern: RegExp, what: string): string {
    pattern.lastIndex = this.position;
    const found = pattern.exec(this.text);
    if (found === null || found[0].length === 0) this.fail(`expected ${what}`);
    this.position += found[0].length;
    return found[0];
  }

  private skipWhitespace(): void {
    whitespacePattern.lastIndex = this.position;
    whitespacePattern.exec(this.text);
    this.position = whitespacePattern.lastIndex;
  }

  private fail(reason: string): never {
    throw new SyntaxError(`${reason} at position ${this.position}`);
  }
}

const pythonLiterals: ReadonlyArray<readonly [string, JsonValue]> = [
  ['null', null],
  ['true', true],
  ['false', false],
  ['NaN', Number.NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
];
