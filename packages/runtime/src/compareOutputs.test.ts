import { ConfigError } from '@open-autoglm/core';
import { DataType, makeNode, makeTensorValueInfo } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareOutputs } from './compareOutputs.js';
import { type Dataset, loadDataset } from './dataset.js';
import { createSession, type RuntimeSession } from './session.js';
import { tinyModel } from './test-support/tinyModel.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const CPU = { device: 'cpu', threads: 1 } as const;

/** A one-node model over [batch, 3] floats. */
const unary = (opType: string, width = 3): Uint8Array =>
  tinyModel(
    [makeNode(opType, ['x'], ['y'])],
    [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 3])],
    [makeTensorValueInfo('y', DataType.FLOAT, ['batch', width])],
  );

const sessions: RuntimeSession[] = [];
async function open(model: string | Uint8Array): Promise<RuntimeSession> {
  const session = await createSession(model, CPU);
  sessions.push(session);
  return session;
}
afterAll(async () => {
  for (const session of sessions) await session.release();
});

let fmnist: Dataset;
beforeAll(async () => {
  const full = await loadDataset({ x: fixture('fmnist-val-2k.x.npy') });
  fmnist = full.slice(0, 300);
});

describe('compareOutputs', () => {
  it('should match hand-computed errors and agreement (Identity vs Relu)', async () => {
    const identity = await open(unary('Identity'));
    const relu = await open(unary('Relu'));
    // Rows: arg-max stays when the negative entries are not the maximum; row 2 is all negative, so
    // Relu makes it all zeros (arg-max 0) while Identity's arg-max is 2.
    const x = new Float32Array([1, -2, 0.5, -0.25, 3, 2, -4, -3, -1e-7]);
    const dataset = await loadDataset({ x: { dtype: 'float32', shape: [3, 3], data: x, file: undefined } });
    const result = await compareOutputs(identity, relu, dataset, { batch: 2 });
    const diffs = [0, 2, 0, 0.25, 0, 0, 4, 3, 1e-7];
    expect(result.samples).toBe(3);
    expect(result.elements).toBe(9);
    expect(result.agreement).toBeCloseTo(2 / 3, 12);
    expect(result.maxAbsError).toBe(4);
    expect(result.meanAbsError).toBeCloseTo(diffs.reduce((a, b) => a + b, 0) / 9, 7);
    // |a - b| / max(|a|, 1e-6): 1 for every negative entry except -1e-7, where the floor gives 0.1.
    expect(result.maxRelError).toBeCloseTo(1, 12);
    const floored = await compareOutputs(identity, relu, dataset.slice(2), { relativeErrorFloor: 5 });
    expect(floored.maxRelError).toBeCloseTo(4 / 5, 7);
  });

  it('should find a model identical to itself and measure two different models against a direct computation', async () => {
    const lenet = await open(fixture('lenet5-fmnist.onnx'));
    const resnet = await open(fixture('resnet8-fmnist.onnx'));
    const same = await compareOutputs(lenet, lenet, fmnist, { batch: 128 });
    expect(same).toEqual({ samples: 300, elements: 3000, agreement: 1, maxAbsError: 0, meanAbsError: 0, maxRelError: 0 });

    const result = await compareOutputs(lenet, resnet, fmnist, { batch: 128 });
    // Reference: one run of each model over all 300 samples, reduced here in float64.
    const input = fmnist.feature('x');
    const feeds = { input: new Tensor('float32', input.data as Float32Array, [...input.shape]) };
    const a = (await lenet.run(feeds))['logits']?.data as Float32Array;
    const b = (await resnet.run(feeds))['logits']?.data as Float32Array;
    let maxAbs = 0;
    let sum = 0;
    let maxRel = 0;
    let agree = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs((a[i] as number) - (b[i] as number));
      maxAbs = Math.max(maxAbs, d);
      maxRel = Math.max(maxRel, d / Math.max(Math.abs(a[i] as number), 1e-6));
      sum += d;
    }
    const argMax = (v: Float32Array, row: number): number => {
      const slice = Array.from(v.subarray(row * 10, row * 10 + 10));
      return slice.indexOf(Math.max(...slice));
    };
    for (let row = 0; row < 300; row++) if (argMax(a, row) === argMax(b, row)) agree++;
    expect(result.agreement).toBeCloseTo(agree / 300, 12);
    expect(result.agreement).toBeGreaterThan(0.8); // two good fmnist classifiers mostly agree
    expect(result.agreement).toBeLessThan(1);
    expect(result.maxAbsError).toBeCloseTo(maxAbs, 4);
    expect(result.meanAbsError).toBeCloseTo(sum / a.length, 4);
    expect(result.maxRelError).toBeCloseTo(maxRel, 2);
  });

  it('should refuse outputs of different widths', async () => {
    const three = await open(unary('Identity'));
    const one = tinyModel(
      [makeNode('ReduceMax', ['x'], ['y'], { axes: [1], keepdims: 1 })],
      [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 3])],
      [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 1])],
    );
    const dataset = await loadDataset({ x: { dtype: 'float32', shape: [2, 3], data: new Float32Array(6), file: undefined } });
    const error = await compareOutputs(three, await open(one), dataset).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/\(3 values per sample\) with output "y" of model .* \(1 values per sample\)/);
  });

  it('should let NaN show in the errors', async () => {
    const identity = await open(unary('Identity'));
    const log = await open(unary('Log'));
    const dataset = await loadDataset({ x: { dtype: 'float32', shape: [1, 3], data: new Float32Array([-1, 1, 2]), file: undefined } });
    const result = await compareOutputs(identity, log, dataset);
    expect(result.maxAbsError).toBeNaN();
    expect(result.meanAbsError).toBeNaN();
  });
});
