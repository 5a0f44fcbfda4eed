/**
 * A parser for the small subset of Python literal syntax that .npy headers use (what numpy writes
 * with `repr` and reads with `ast.literal_eval`): dicts, tuples, lists, quoted strings, integers,
 * True/False/None. A tuple is returned as an array.
 */

export type PythonLiteral = string | number | boolean | null | PythonLiteral[] | PythonDict;
export type PythonDict = Map<string, PythonLiteral>;

/** Thrown with the offending position; the caller turns it into a user-facing error. */
export class PythonLiteralSyntaxError extends Error {}

export function parsePythonLiteral(text: string): PythonLiteral {
  const parser = new LiteralParser(text);
  const value = parser.value();
  parser.skipSpace();
  if (!parser.atEnd()) parser.fail('unexpected text after the literal');
  return value;
}

class LiteralParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(what: string): never {
    throw new PythonLiteralSyntaxError(`${what} at character ${this.pos}`);
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.pos] as string)) this.pos++;
  }

  value(): PythonLiteral {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) this.fail('unexpected end of text');
    if (c === '{') return this.dict();
    if (c === '(') return this.sequence('(', ')', true);
    if (c === '[') return this.sequence('[', ']', false);
    if (c === "'" || c === '"') return this.string(c);
    if (/[-+0-9]/.test(c)) return this.integer();
    for (const [word, literal] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return literal;
      }
    }
    return this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private expect(char: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== char) this.fail(`expected ${JSON.stringify(char)}`);
    this.pos++;
  }

  /** True (and consumes it) when the next non-space character is `char`. */
  private take(char: string): boolean {
    this.skipSpace();
    if (this.text[this.pos] !== char) return false;
    this.pos++;
    return true;
  }

  private dict(): PythonDict {
    this.expect('{');
    const dict: PythonDict = new Map();
    while (!this.take('}')) {
      const key = this.value();
      if (typeof key !== 'string') this.fail('dictionary keys must be strings');
      this.expect(':');
      dict.set(key, this.value());
      if (!this.take(',')) {
        this.expect('}');
        break;
      }
    }
    return dict;
  }

  private sequence(open: string, close: string, isTuple: boolean): PythonLiteral {
    this.expect(open);
    const items: PythonLiteral[] = [];
    let trailingComma = false;
    while (!this.take(close)) {
      items.push(this.value());
      trailingComma = this.take(',');
      if (!trailingComma) {
        this.expect(close);
        break;
      }
    }
    // `(5)` is just 5 in Python; only `(5,)` is a one-element tuple.
    if (isTuple && items.length === 1 && !trailingComma) return items[0] as PythonLiteral;
    return items;
  }

  private string(quote: string): string {
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined) this.fail('unterminated string');
      if (c === quote) return out;
      if (c === '\\') {
        const escaped = this.text[this.pos++];
        if (escaped === undefined) this.fail('unterminated string');
        out += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : escaped;
      } else {
        out += c;
      }
    }
  }

  private integer(): number {
    // Python 2 wrote longs as `10L`; numpy still accepts them in old files.
    const match = /^[-+]?\d+L?/.exec(this.text.slice(this.pos));
    if (match === null) this.fail('expected an integer');
    this.pos += match[0].length;
    if (this.text[this.pos] === '.' || this.text[this.pos] === 'e') this.fail('only integers are supported');
    const value = Number(match[0].replace('L', ''));
    if (!Number.isSafeInteger(value)) this.fail(`integer ${match[0]} is too large`);
    return value;
  }
}
