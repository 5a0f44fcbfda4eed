import { PluginError } from '../errors/errors.js';

/** Type-only marker: carries `T` on a token without any runtime field. */
declare const tokenValueType: unique symbol;

/**
 * A typed key under which a plugin binds what it provides (`Token<Pass>` for `core.pass`).
 * Two tokens with the same id are interchangeable: they share one `Symbol.for(id)`, so plugins
 * built against another installed copy of core still meet this one in the container.
 */
export interface Token<T> {
  /** Dotted id, `<owner>.<thing>` (`core.pass`, `quantizer-int8.calibrator`). */
  readonly id: string;
  /** The registered symbol, `Symbol.for(id)`; what tsyringe sees. */
  readonly symbol: symbol;
  /** `Token{core.pass}`, for messages. */
  toString(): string;
  readonly [tokenValueType]?: T;
}

/** The value type a token stands for: `TokenValue<typeof PassToken>` is `Pass`. */
export type TokenValue<TToken> = TToken extends Token<infer T> ? T : never;

const tokenIdPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;
// Marks token objects so `isToken` also recognises tokens made by another copy of core.
const tokenBrand = Symbol.for('open-autoglm.token');

/**
 * Creates the token `id` stands for. Ids are dotted, owner first (`core.pass`); creating the
 * same id twice (or in two copies of core) gives equal tokens.
 */
export function createToken<T>(id: string): Token<T> {
  if (!tokenIdPattern.test(id)) {
    throw new PluginError(
      `Invalid token id ${JSON.stringify(id)}: use dotted segments of letters, digits, "_" or "-", ` +
        'owner first (for example "core.pass" or "my-plugin.cache").',
    );
  }
  const token = {
    id,
    symbol: Symbol.for(id),
    toString: () => `Token{${id}}`,
  };
  Object.defineProperty(token, tokenBrand, { value: true });
  return Object.freeze(token);
}

/** True for tokens made by `createToken`, from this or any other copy of core. */
export function isToken(value: unknown): value is Token<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[tokenBrand] === true &&
    typeof (value as { id?: unknown }).id === 'string' &&
    typeof (value as { symbol?: unknown }).symbol === 'symbol'
  );
}
