import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, DatasetError } from '@open-autoglm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset, loadDataset } from './dataset.js';
import { type NpyArray, readNpy, writeNpy } from './npy.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;

const array = (shape: number[], file?: string): NpyArray => ({
  dtype: 'float32',
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
  file,
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-dataset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadDataset', () => {
  it('should load a fixture split and batch it with views on the file data', async () => {
    const dataset = await loadDataset({ x: fixture('spam-val.x.npy'), y: fixture('spam-val.y.npy') });
    expect(dataset.size).toBe(889);
    expect(dataset.sampleShape()).toEqual([128]);
    const x = dataset.feature('x');
    const batches = [...dataset.batches(300)];
    expect(batches.map((b) => [b.start, b.size])).toEqual([
      [0, 300],
      [300, 300],
      [600, 289],
    ]);
    const last = batches[2];
    const tensor = last?.features['x'];
    expect(tensor?.type).toBe('int64');
    expect(tensor?.dims).toEqual([289, 128]);
    // A view, not a copy: same buffer, starting at row 600.
    const data = tensor?.data as BigInt64Array;
    expect(data.buffer).toBe(x.data.buffer);
    expect(data[0]).toBe((x.data as BigInt64Array)[600 * 128]);
    expect(last?.labels?.length).toBe(289);
    expect(last?.labels?.[0]).toBe((dataset.labels?.data as BigInt64Array)[600]);
  });

  it('should name both files and both counts when x and y disagree', async () => {
    const x = path.join(dir, 'x.npy');
    const y = path.join(dir, 'y.npy');
    await writeNpy(x, { dtype: 'float32', shape: [5, 2], data: new Float32Array(10) });
    await writeNpy(y, { dtype: 'int64', shape: [4], data: new BigInt64Array(4) });
    const error = await loadDataset({ x, y }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toBe(
      `x (${x}) has 5 samples but y (${y}) has 4. ` +
        'Every array of a dataset must hold the same samples in the same order; re-export them together.',
    );
  });

  it('should take several named inputs and arrays already read', async () => {
    const ids = await readNpy(fixture('spam-val.x.npy'));
    const dataset = await loadDataset({ x: { input_ids: ids, mask: array([889, 4]) } });
    expect([...dataset.features.keys()]).toEqual(['input_ids', 'mask']);
    expect(dataset.labels).toBeUndefined();
    const first = dataset.batches(1000).next().value;
    expect(Object.keys(first?.features ?? {})).toEqual(['input_ids', 'mask']);
    expect(first?.labels).toBeUndefined();
  });

  it('should refuse a scalar array and a dataset without inputs', () => {
    expect(() => new Dataset(new Map([['x', array([], 'scalar.npy')]]), undefined)).toThrow(
      /x \(scalar\.npy\) is a scalar; a dataset array needs one row per sample/,
    );
    expect(() => new Dataset(new Map(), undefined)).toThrow(ConfigError);
    expect(() => new Dataset(new Map([['x', { ...array([2, 3]), shape: [2, 4] }]]), undefined)).toThrow(
      /x holds 6 values but its shape \[2, 4\] needs 8/,
    );
  });
});

describe('Dataset', () => {
  const dataset = new Dataset(new Map([['x', array([10, 3])]]), { dtype: 'int64', shape: [10], data: BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i)), file: undefined });

  it('should slice samples without copying and clamp the range', () => {
    const part = dataset.slice(2, 5);
    expect(part.size).toBe(3);
    expect(Array.from(part.feature('x').data as Float32Array)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(part.feature('x').data.buffer).toBe(dataset.feature('x').data.buffer);
    expect(Array.from(part.labels?.data as BigInt64Array)).toEqual([2n, 3n, 4n]);
    expect(dataset.slice(8, 100).size).toBe(2);
    expect(dataset.slice(7, 3).size).toBe(0);
  });

  it('should yield one partial batch when the batch is larger than the dataset, and none when empty', () => {
    expect([...dataset.batches(64)].map((b) => b.size)).toEqual([10]);
    expect([...dataset.slice(0, 0).batches(4)]).toEqual([]);
  });

  it('should refuse a batch size that is not a positive whole number', () => {
    expect(() => [...dataset.batches(0)]).toThrow(/Batch size must be a whole number >= 1, got 0/);
    expect(() => [...dataset.batches(2.5)]).toThrow(ConfigError);
  });

  it('should refuse to compute statistics over no samples, naming the files', () => {
    const empty = new Dataset(new Map([['x', { ...array([0, 3]), file: 'none.npy' }]]), undefined);
    expect(() => empty.requireSamples('measure accuracy')).toThrow(
      /Cannot measure accuracy: the dataset \(none\.npy\) has no samples/,
    );
    expect(() => dataset.requireSamples('measure accuracy')).not.toThrow();
  });

  it('should name the arrays it has when asked for one it lacks', () => {
    expect(() => dataset.feature('pixels')).toThrow(/no input array "pixels"; it has: x/);
  });
});
