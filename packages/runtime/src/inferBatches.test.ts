import { ConfigError, DatasetError } from '@open-autoglm/core';
import { DataType, makeNode, makeTensorValueInfo } from '@open-autoglm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from './dataset.js';
import { bindInputs, inferBatches } from './inferBatches.js';
import type { NpyArray } from './npy.js';
import { createSession, type RuntimeSession } from './session.js';
import { tinyModel } from './test-support/tinyModel.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const CPU = { device: 'cpu', threads: 1 } as const;

const floats = (shape: number[], file?: string): NpyArray => ({
  dtype: 'float32',
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
  file,
});

/** out = a + b over [batch, 2]: two inputs. */
const addModel = (): Uint8Array =>
  tinyModel(
    [makeNode('Add', ['a', 'b'], ['sum'])],
    [makeTensorValueInfo('a', DataType.FLOAT, ['batch', 2]), makeTensorValueInfo('b', DataType.FLOAT, ['batch', 2])],
    [makeTensorValueInfo('sum', DataType.FLOAT, ['batch', 2])],
  );

let lenet: RuntimeSession;
let add: RuntimeSession;
beforeAll(async () => {
  lenet = await createSession(fixture('lenet5-fmnist.onnx'), CPU);
  add = await createSession(addModel(), CPU);
});
afterAll(async () => {
  await lenet.release();
  await add.release();
});

describe('bindInputs', () => {
  it('should bind the single array to a single-input model', async () => {
    const dataset = await loadDataset({ x: floats([3, 1, 28, 28]) });
    expect(bindInputs(lenet, dataset).map((b) => [b.input.name, b.feature])).toEqual([['input', 'x']]);
  });

  it('should bind arrays named like the inputs, or follow an explicit map', async () => {
    const byName = await loadDataset({ x: { b: floats([4, 2]), a: floats([4, 2]) } });
    expect(bindInputs(add, byName).map((b) => [b.input.name, b.feature])).toEqual([
      ['a', 'a'],
      ['b', 'b'],
    ]);
    const other = await loadDataset({ x: { left: floats([4, 2]), right: floats([4, 2]) } });
    expect(bindInputs(add, other, { a: 'left', b: 'right' }).map((b) => b.feature)).toEqual(['left', 'right']);
  });

  it('should explain an ambiguous binding and a map that is incomplete or names unknown inputs', async () => {
    const single = await loadDataset({ x: floats([4, 2]) });
    expect(() => bindInputs(add, single)).toThrow(ConfigError);
    expect(() => bindInputs(add, single)).toThrow(/has 2 inputs \(a, b\) and the dataset has 1 array\(s\) \(x\).*Pass inputMap/);
    expect(() => bindInputs(add, single, { a: 'x' })).toThrow(/does not say which dataset array feeds input "b"/);
    expect(() => bindInputs(add, single, { a: 'x', b: 'x', c: 'x' })).toThrow(/inputMap names "c", which model .* does not have/);
    expect(() => bindInputs(add, single, { a: 'x', b: 'y' })).toThrow(/no input array "y"/);
  });

  it('should name the file and the conversion when the element type differs', async () => {
    const dataset = await loadDataset({ x: { ...floats([2, 1, 28, 28], 'pixels.npy'), dtype: 'float64', data: new Float64Array(2 * 784) } });
    const error = (() => {
      try {
        bindInputs(lenet, dataset);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).file).toBe('pixels.npy');
    expect((error as Error).message).toMatch(
      /Dataset array x \(pixels\.npy\) is float64 but input "input" of model .* expects float32\. .*astype\(numpy\.float32\)/,
    );
  });

  it('should refuse samples whose shape does not fit the fixed dimensions', async () => {
    const dataset = await loadDataset({ x: floats([2, 784], 'flat.npy') });
    expect(() => bindInputs(lenet, dataset)).toThrow(
      /flat\.npy\) has samples of shape \[784\] but input "input" of model .* takes \[batch, 1, 28, 28\]/,
    );
  });
});

describe('inferBatches', () => {
  it('should run every batch, including the last partial one, with outputs per batch', async () => {
    const dataset = await loadDataset({ x: { a: floats([5, 2]), b: floats([5, 2]) } });
    const seen: Array<[number, number, number[]]> = [];
    for await (const part of inferBatches(add, dataset, { batch: 2 })) {
      seen.push([part.start, part.size, Array.from(part.outputs['sum']?.data as Float32Array)]);
    }
    // a = b = 0..9 row-major, so sum = 2 * index.
    expect(seen).toEqual([
      [0, 2, [0, 2, 4, 6]],
      [2, 2, [8, 10, 12, 14]],
      [4, 1, [16, 18]],
    ]);
  });

  it('should refuse batches that do not fit a fixed batch axis', async () => {
    const fixed = tinyModel(
      [makeNode('Identity', ['x'], ['y'])],
      [makeTensorValueInfo('x', DataType.FLOAT, [4, 2])],
      [makeTensorValueInfo('y', DataType.FLOAT, [4, 2])],
    );
    const session = await createSession(fixed, CPU);
    try {
      const dataset = await loadDataset({ x: floats([8, 2]) });
      await expect(inferBatches(session, dataset, { batch: 100 }).next()).rejects.toThrow(
        /fixed batch size of 4, but batches of 100 over 8 samples.*Use batch 4/,
      );
      let runs = 0;
      for await (const part of inferBatches(session, dataset, { batch: 4 })) runs += part.size;
      expect(runs).toBe(8);
    } finally {
      await session.release();
    }
  });
});
