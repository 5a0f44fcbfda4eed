/** A path of keys and list indices into a config (`['passes', 1, 'with', 'ratio']`). */
export type KeyPath = readonly (string | number)[];

/** A 1-based line and column in a source file. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * Finds where a key path is in the source text: the value's position, or the key's with
 * `part: 'key'`. For a key that is missing, the nearest enclosing key that exists.
 */
export type SourceLocator = (keyPath: KeyPath, part?: 'key' | 'value') => SourcePosition | undefined;

/** Where a block of options came from, so that messages can point at the file and line. */
export interface ConfigLocation {
  /** The config file, absolute. */
  readonly file?: string;
  /** The block's key path from the config's root (`['passes', 1, 'with']`). */
  readonly keyPath: KeyPath;
  readonly locate?: SourceLocator;
}

const identifierPattern = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `passes[1].with.ratio` style; `(top level)` for the root. */
export function formatKeyPath(keyPath: readonly PropertyKey[]): string {
  let text = '';
  for (const key of keyPath) {
    if (typeof key === 'number') text += `[${key}]`;
    else if (typeof key === 'string' && identifierPattern.test(key)) text += text === '' ? key : `.${key}`;
    else text += `[${JSON.stringify(String(key))}]`;
  }
  return text === '' ? '(top level)' : text;
}
