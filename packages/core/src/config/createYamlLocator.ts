import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { KeyPath, SourceLocator, SourcePosition } from './ConfigLocation.js';

/** A `SourceLocator` over a parsed YAML document (parsed with `lineCounter`). */
export function createYamlLocator(document: Document, lineCounter: LineCounter): SourceLocator {
  const positionOf = (node: Node | null | undefined): SourcePosition | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  return (keyPath: KeyPath, part: 'key' | 'value' = 'value') => {
    let node: unknown = document.contents;
    let keyNode: Node | undefined;
    // The key (or list item) of the deepest node found: where a missing key should have been.
    let nearest: Node | undefined = isNode(node) ? node : undefined;
    for (const key of keyPath) {
      if (isAlias(node)) node = node.resolve(document);
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(key));
        if (pair === undefined) return positionOf(nearest);
        keyNode = isNode(pair.key) ? pair.key : undefined;
        node = pair.value;
      } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
        keyNode = undefined;
        node = node.items[key];
      } else {
        return positionOf(nearest);
      }
      nearest = keyNode ?? (isNode(node) ? node : nearest);
    }
    if (part === 'key' && keyNode !== undefined) return positionOf(keyNode);
    // `key:` with no value has an empty value node (or none) after the colon: point at the key.
    if (!isNode(node) || (isScalar(node) && node.range?.[0] === node.range?.[1])) return positionOf(keyNode ?? nearest);
    return positionOf(node);
  };
}

function isNode(value: unknown): value is Node {
  return isMap(value) || isSeq(value) || isScalar(value) || isAlias(value);
}
