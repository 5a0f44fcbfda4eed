import { ConfigError } from '@open-autoglm/core';
import { DataType, makeNode, makeTensorValueInfo } from '@open-autoglm/onnx';
import { describe, expect, it } from 'vitest';
import { createSession } from './session.js';
import { syntheticInputs } from './syntheticInputs.js';
import { tinyModel } from './test-support/tinyModel.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const CPU = { device: 'cpu', threads: 1 } as const;

/** Identity over an int32 input of shape [batch, seq] (a second symbolic dimension). */
const sequenceModel = (): Uint8Array =>
  tinyModel(
    [makeNode('Identity', ['ids'], ['out'])],
    [makeTensorValueInfo('ids', DataType.INT32, ['batch', 'seq'])],
    [makeTensorValueInfo('out', DataType.INT32, ['batch', 'seq'])],
  );

describe('syntheticInputs', () => {
  it('should bind the symbolic batch axis and fill floats in [0, 1)', async () => {
    const session = await createSession(fixture('lenet5-fmnist.onnx'), CPU);
    const feeds = syntheticInputs(session, { batch: 4 });
    const input = feeds['input'];
    expect(input?.dims).toEqual([4, 1, 28, 28]);
    const values = input?.data as Float32Array;
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    expect(new Set(values).size).toBeGreaterThan(100); // not a constant
    expect(Array.from(syntheticInputs(session, { batch: 4 })['input']?.data as Float32Array)).toEqual(Array.from(values));
    await session.release();
  });

  it('should give int64 token inputs valid ids 0 and 1 that the model accepts', async () => {
    const session = await createSession(fixture('tinybert-spam.onnx'), CPU);
    const feeds = syntheticInputs(session, { batch: 2 });
    const ids = feeds['input_ids'];
    expect(ids?.type).toBe('int64');
    expect(ids?.dims).toEqual([2, 128]);
    expect(new Set(ids?.data as BigInt64Array)).toEqual(new Set([0n, 1n]));
    expect((await session.run(feeds))['logits']?.dims).toEqual([2, 2]);
    await session.release();
  });

  it('should ask for the size of other symbolic dimensions, and use symbolicDims', async () => {
    const session = await createSession(sequenceModel(), CPU);
    expect(() => syntheticInputs(session, { batch: 2 })).toThrow(ConfigError);
    expect(() => syntheticInputs(session, { batch: 2 })).toThrow(/symbolic dimension "seq" at axis 1.*symbolicDims: \{ "seq": <size> \}/);
    const feeds = syntheticInputs(session, { batch: 2, symbolicDims: { seq: 5 } });
    expect(feeds['ids']?.dims).toEqual([2, 5]);
    expect((await session.run(feeds))['out']?.dims).toEqual([2, 5]);
    await session.release();
  });
});
