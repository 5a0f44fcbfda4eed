import { toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../attributes.js';
import { DataType, ModelProtoSchema } from '../../proto.js';
import { buildModel, randomArray } from '../../test-support/testModels.js';
import { checkGradients } from '../test-support/checkGradients.js';

async function checkPool(op: string, dims: number[], attributes: Record<string, AttributeValue>, data?: Float32Array): Promise<number> {
  const result = await checkGradients({
    nodes: [{ op, inputs: ['x'], outputs: ['y'], attributes }],
    inputs: [{ name: 'x', dims, ...(data === undefined ? {} : { data }) }],
    outputs: ['y'],
  });
  return result.maxRelativeError;
}

/** Distinct values in a shuffled order: no window has a tie, so the finite differences are exact. */
function distinctValues(count: number): Float32Array {
  const order = Array.from(randomArray(count, 5), (value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
  const out = new Float32Array(count);
  order.forEach((entry, rank) => {
    out[entry.index] = rank / count - 0.5;
  });
  return out;
}

describe('poolingGradients', () => {
  it('should give the gradient of a 2x2 stride-2 MaxPool, with a trailing row no window reads', async () => {
    expect(await checkPool('MaxPool', [2, 3, 7, 6], { kernel_shape: [2, 2], strides: [2, 2] }, distinctValues(252))).toBeLessThan(1e-3);
  });

  it('should give the gradient of an overlapping, padded 3x3 stride-2 MaxPool', async () => {
    const attributes = { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    expect(await checkPool('MaxPool', [2, 2, 7, 7], attributes, distinctValues(196))).toBeLessThan(1e-3);
  });

  it('should give the gradient of a MaxPool with ceil_mode, dilations and asymmetric pads', async () => {
    const ceil = { kernel_shape: [3, 2], strides: [2, 2], pads: [0, 1, 1, 0], ceil_mode: 1 };
    expect(await checkPool('MaxPool', [2, 2, 6, 7], ceil, distinctValues(168))).toBeLessThan(1e-3);
    const dilated = { kernel_shape: [2, 2], strides: [1, 2], dilations: [2, 2] };
    expect(await checkPool('MaxPool', [1, 2, 6, 7], dilated, distinctValues(84))).toBeLessThan(1e-3);
  });

  it('should give the gradient of non-overlapping MaxPool windows with pads, ceil_mode and dilations (no Indices)', async () => {
    const padded = { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 0, 0, 0], ceil_mode: 1 };
    expect(await checkPool('MaxPool', [2, 2, 6, 6], padded, distinctValues(144))).toBeLessThan(1e-3);
    const dilated = { kernel_shape: [2, 2], strides: [3, 3], dilations: [2, 2] };
    expect(await checkPool('MaxPool', [2, 2, 8, 7], dilated, distinctValues(224))).toBeLessThan(1e-3);
  });

  it('should give the gradient of a 1-D MaxPool', async () => {
    expect(await checkPool('MaxPool', [2, 3, 9], { kernel_shape: [3], strides: [2] }, distinctValues(54))).toBeLessThan(1e-3);
  });

  it('should send the gradient of tied windows where onnxruntime MaxPool Indices point', async () => {
    // Values from {0, 0.5, 1}: most windows hold ties, many of them all zeros (as after a Relu).
    const dims = [2, 2, 6, 6];
    const size = 144;
    const x = Float32Array.from(randomArray(size, 3), (v) => Math.floor((v + 1) * 1.5) / 2);
    const windows: Record<string, AttributeValue>[] = [
      { kernel_shape: [2, 2], strides: [2, 2] },
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    ];
    for (const attributes of windows) {
      const result = await checkGradients({
        nodes: [{ op: 'MaxPool', inputs: ['x'], outputs: ['y'], attributes }],
        inputs: [{ name: 'x', dims, data: x }],
        outputs: ['y'],
      });
      // Reference: onnxruntime's own Indices, with dL/dY of the checker's loss mean((y - t)^2).
      const reference = buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims }],
        outputs: ['y', 'indices'],
        nodes: [{ op: 'MaxPool', inputs: ['x'], outputs: ['y', 'indices'], attributes }],
      }, { indices: DataType.INT64 });
      const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, reference));
      const out = await session.run({ x: new ort.Tensor('float32', x, dims) });
      await session.release();
      const y = out.y?.data as Float32Array;
      const indices = out.indices?.data as BigInt64Array;
      const targets = randomArray(y.length, 99);
      const expected = new Float64Array(size);
      y.forEach((value, i) => {
        const position = Number(indices[i]);
        expected[position] = (expected[position] as number) + (2 * (value - (targets[i] as number))) / y.length;
      });
      const analytic = result.inputs.x?.analytic as Float32Array;
      let worst = 0;
      expected.forEach((value, i) => {
        worst = Math.max(worst, Math.abs(value - (analytic[i] as number)));
      });
      expect(worst, JSON.stringify(attributes)).toBeLessThan(1e-6);
    }
  });

  it('should give the gradient of AveragePool with and without count_include_pad', async () => {
    for (const countIncludePad of [0, 1]) {
      const attributes = { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: countIncludePad };
      expect(await checkPool('AveragePool', [2, 2, 7, 6], attributes), `count_include_pad ${countIncludePad}`).toBeLessThan(1e-3);
    }
  });

  it('should give the gradient of AveragePool with ceil_mode and asymmetric pads', async () => {
    for (const countIncludePad of [0, 1]) {
      const attributes = { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 0, 0, 1], ceil_mode: 1, count_include_pad: countIncludePad };
      expect(await checkPool('AveragePool', [2, 2, 6, 7], attributes), `count_include_pad ${countIncludePad}`).toBeLessThan(1e-3);
    }
  });

  it('should give the gradient of GlobalAveragePool', async () => {
    expect(await checkPool('GlobalAveragePool', [3, 4, 5, 6], {})).toBeLessThan(1e-3);
  });
});
