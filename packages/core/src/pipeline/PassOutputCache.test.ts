import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassOutputCache } from './PassOutputCache.js';

describe('PassOutputCache', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'autoglm-cache-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should key on the input bytes, the pass identity and the parameters, whatever their order', () => {
    const input = new Uint8Array([1, 2, 3]);
    const key = PassOutputCache.key(input, 'p@1 {}', { a: 1, b: 'x' });
    expect(PassOutputCache.key(new Uint8Array([1, 2, 3]), 'p@1 {}', { b: 'x', a: 1 })).toBe(key);
    expect(PassOutputCache.key(new Uint8Array([1, 2, 4]), 'p@1 {}', { a: 1, b: 'x' })).not.toBe(key);
    expect(PassOutputCache.key(input, 'p@2 {}', { a: 1, b: 'x' })).not.toBe(key);
    expect(PassOutputCache.key(input, 'p@1 {}', { a: 2, b: 'x' })).not.toBe(key);
  });

  it('should return what was put, count hits and misses, and miss an entry whose report is missing', async () => {
    const cache = new PassOutputCache(path.join(dir, 'cache'));
    expect(await cache.get('k1')).toBeUndefined();
    await cache.put('k1', { bytes: new Uint8Array([9, 8, 7]), report: { pruned: 4 } });
    const hit = await cache.get('k1');
    expect([...(hit?.bytes ?? [])]).toEqual([9, 8, 7]);
    expect(hit?.report).toEqual({ pruned: 4 });
    await writeFile(path.join(dir, 'cache', 'k2.onnx'), new Uint8Array([1]));
    expect(await cache.get('k2')).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([1, 2]);
  });
});
