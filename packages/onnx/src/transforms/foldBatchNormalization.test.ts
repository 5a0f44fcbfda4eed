import { clone } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { countModelStats } from '../countModelStats.js';
import { DataType, type ModelProto, ModelProtoSchema } from '../proto.js';
import { arrayToTensor, elementCount, tensorToArray } from '../tensor.js';
import { foldBatchNormalization } from './foldBatchNormalization.js';
import {
  buildModel,
  fixtureInputs,
  loadFixture,
  type ModelSpec,
  type NodeSpec,
  randomArray,
  readNpyRows,
  relativeDifference,
  runModel,
} from '../test-support/testModels.js';

const tensor = (name: string, dims: number[], seed: number, positive = false) => {
  const data = randomArray(elementCount(dims), seed);
  return arrayToTensor(name, positive ? data.map((v) => Math.abs(v) + 0.1) : data, dims);
};

/** BatchNormalization over `channels` with random statistics, reading `input`. */
function batchNorm(input: string, output: string, channels: number, seed: number): { node: NodeSpec; initializers: ReturnType<typeof tensor>[] } {
  return {
    node: { op: 'BatchNormalization', inputs: [input, 'g', 'b', 'm', 'v'], outputs: [output], name: 'bn', attributes: { epsilon: 1e-3 }, floatAttributes: ['epsilon'] },
    initializers: [tensor('g', [channels], seed), tensor('b', [channels], seed + 1), tensor('m', [channels], seed + 2), tensor('v', [channels], seed + 3, true)],
  };
}

async function outputsOf(model: ModelProto, inputDims: number[]): Promise<ort.Tensor> {
  const feeds = { x: new ort.Tensor('float32', randomArray(elementCount(inputDims), 99), inputDims) };
  const out = await runModel(model, feeds);
  return out['y'] as ort.Tensor;
}

/** Folds a copy of the model and checks that ORT's output stays within `tolerance` (relative). */
async function expectSameOutputs(spec: ModelSpec, tolerance = 1e-5) {
  const model = buildModel(spec);
  const folded = clone(ModelProtoSchema, model);
  const report = foldBatchNormalization(folded);
  const dims = spec.inputs[0]?.dims as number[];
  const [before, after] = [await outputsOf(model, dims), await outputsOf(folded, dims)];
  expect(after.dims).toEqual(before.dims);
  expect(relativeDifference(before, after)).toBeLessThan(tolerance);
  return { report, folded, model };
}

describe('foldBatchNormalization', () => {
  for (const [name, batchNorms] of [
    ['lenet5-fmnist', 2],
    ['resnet8-fmnist', 9],
    ['vgg11bn-mnist', 8],
  ] as const) {
    it(`should fold every BatchNormalization of ${name} and keep its logits within 1e-4`, async () => {
      const model = loadFixture(name);
      const folded = clone(ModelProtoSchema, model);
      const report = foldBatchNormalization(folded);
      expect(report.notFolded).toEqual([]);
      expect(report.folded).toBe(batchNorms);
      expect(folded.graph?.node.some((n) => n.opType === 'BatchNormalization')).toBe(false);
      // resnet8 also loses the two Identity nodes that aliased a BatchNorm bias.
      const identities = name === 'resnet8-fmnist' ? 2 : 0;
      expect(folded.graph?.node.length).toBe((model.graph?.node.length ?? 0) - batchNorms - identities);
      expect(folded.graph?.initializer.some((t) => t.name.includes('running_'))).toBe(false);

      const feeds = fixtureInputs(name, 64);
      const [before, after] = [(await runModel(model, feeds))['logits'], (await runModel(folded, feeds))['logits']];
      if (before === undefined || after === undefined) throw new Error('no logits');
      expect(relativeDifference(before, after)).toBeLessThan(1e-4);
      // The folded model also still matches PyTorch's own logits.
      const reference = readNpyRows(`${name}.ref-logits.npy`, 64);
      const pytorch = new ort.Tensor('float32', reference.data as Float32Array, reference.dims);
      expect(relativeDifference(pytorch, after)).toBeLessThan(1e-4);
    });
  }

  it('should name a created Conv bias after the weight, PyTorch style', () => {
    const folded = loadFixture('lenet5-fmnist');
    foldBatchNormalization(folded);
    const conv = folded.graph?.node.find((n) => n.opType === 'Conv');
    expect(conv?.input).toEqual(['input', 'conv1.weight', 'conv1.bias']);
    // Folding trades BatchNorm's 2x6 and 2x16 parameters for the new conv biases (6 + 16).
    expect(countModelStats(folded).params).toBe(61728 - (12 + 32) + (6 + 16));
  });

  it('should compute the folded values in float64 from the formula', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [1, 1, 2, 2] }],
      initializers: [
        arrayToTensor('w', new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), [2, 1, 2, 2]),
        arrayToTensor('bias', new Float32Array([0.5, -1]), [2]),
        arrayToTensor('g', new Float32Array([2, 3]), [2]),
        arrayToTensor('b', new Float32Array([0.25, 0]), [2]),
        arrayToTensor('m', new Float32Array([1, -2]), [2]),
        arrayToTensor('v', new Float32Array([3, 0]), [2]),
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'bias'], outputs: ['c'] },
        { op: 'BatchNormalization', inputs: ['c', 'g', 'b', 'm', 'v'], outputs: ['y'], attributes: { epsilon: 1 }, floatAttributes: ['epsilon'] },
      ],
      outputs: ['y'],
    };
    const model = buildModel(spec);
    foldBatchNormalization(model);
    const values = (name: string) => Array.from(tensorToArray(model.graph?.initializer.find((t) => t.name === name) as never) as Float32Array);
    // s = g / sqrt(v + eps) = [2 / 2, 3 / 1] = [1, 3]; bias' = s * (bias - m) + b = [-0.25, 3].
    expect(values('w')).toEqual([1, 2, 3, 4, 15, 18, 21, 24]);
    expect(values('bias')).toEqual([-0.25, 3]);
    expect(model.graph?.initializer.map((t) => t.name).sort()).toEqual(['bias', 'w']);
  });

  it('should fold into a grouped ConvTranspose', async () => {
    const bn = batchNorm('t', 'y', 6, 10);
    const { report, folded } = await expectSameOutputs({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 4, 5, 5] }],
      initializers: [tensor('w', [4, 3, 3, 3], 1), ...bn.initializers],
      nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['t'], attributes: { group: 2, strides: [2, 2] } }, bn.node],
      outputs: ['y'],
    });
    expect(report).toMatchObject({ folded: 1, notFolded: [] });
    expect(folded.graph?.node.map((n) => n.opType)).toEqual(['ConvTranspose']);
  });

  it('should fold into a Gemm with a [1, N] bias and beta, and one without bias', async () => {
    const bn = batchNorm('t', 'y', 4, 20);
    const withBias = await expectSameOutputs({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [3, 5] }],
      initializers: [tensor('w', [5, 4], 2), tensor('c', [1, 4], 3), ...bn.initializers],
      nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['t'], attributes: { beta: 0.5, alpha: 2 }, floatAttributes: ['beta', 'alpha'] }, bn.node],
      outputs: ['y'],
    });
    expect(withBias.report.folded).toBe(1);
    const noBias = await expectSameOutputs({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [3, 5] }],
      initializers: [tensor('w', [4, 5], 2), ...bn.initializers],
      nodes: [{ op: 'Gemm', inputs: ['x', 'w'], outputs: ['t'], attributes: { transB: 1 } }, bn.node],
      outputs: ['y'],
    });
    expect(noBias.report.folded).toBe(1);
    expect(noBias.folded.graph?.node[0]?.input.length).toBe(3);
  });

  it('should copy a weight shared with another node instead of changing it', async () => {
    const bn = batchNorm('a', 'an', 3, 30);
    const { report, folded } = await expectSameOutputs({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [1, 2, 6, 6] }],
      initializers: [tensor('w', [3, 2, 3, 3], 4), tensor('cb', [3], 5), ...bn.initializers],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w', 'cb'], outputs: ['a'] },
        bn.node,
        { op: 'Conv', inputs: ['x', 'w', 'cb'], outputs: ['b2'] },
        { op: 'Add', inputs: ['an', 'b2'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    expect(report.folded).toBe(1);
    const convs = folded.graph?.node.filter((n) => n.opType === 'Conv').map((n) => n.input);
    expect(convs).toEqual([
      ['x', 'w_bn_folded', 'cb_bn_folded'],
      ['x', 'w', 'cb'],
    ]);
  });

  it('should leave BatchNorms it cannot fold in place and say why', async () => {
    const bn1 = batchNorm('r', 'n1', 3, 40);
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 2, 4, 4] }],
      initializers: [
        tensor('w', [3, 2, 1, 1], 6),
        tensor('gw', [48, 3], 7),
        tensor('gc', [2, 3], 8),
        tensor('g2', [3], 9),
        tensor('b2', [3], 10),
        tensor('m2', [3], 11),
        tensor('v2', [3], 12, true),
        ...bn1.initializers,
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
        { op: 'Relu', inputs: ['c'], outputs: ['r'], name: 'relu' },
        { ...bn1.node, name: 'after_relu' },
        // conv's output is read by the Relu too: folding would change what the Relu sees.
        { op: 'BatchNormalization', inputs: ['c', 'g2', 'b2', 'm2', 'v2'], outputs: ['n2'], name: 'shared_input' },
        { op: 'Add', inputs: ['n1', 'n2'], outputs: ['s'] },
        { op: 'Flatten', inputs: ['s'], outputs: ['f'] },
        // Gemm with a per-row C ([M, N]) cannot take a per-column bias.
        { op: 'Gemm', inputs: ['f', 'gw', 'gc'], outputs: ['gm'], name: 'gemm' },
        { op: 'BatchNormalization', inputs: ['gm', 'g2', 'b2', 'm2', 'v2'], outputs: ['y'], name: 'per_row_bias' },
      ],
      outputs: ['y'],
    };
    const { report, folded, model } = await expectSameOutputs(spec);
    expect(report.folded).toBe(0);
    expect(report.notFolded).toEqual([
      { batchNorm: 'after_relu', reason: 'its input comes from Relu node "relu", not from Conv, ConvTranspose or Gemm' },
      { batchNorm: 'shared_input', reason: expect.stringMatching(/output of Conv node "conv" is also read elsewhere/) as string },
      { batchNorm: 'per_row_bias', reason: expect.stringMatching(/C input of Gemm node "gemm" has shape \[2, 3\]/) as string },
    ]);
    expect(folded).toEqual(model);
  });

  it('should report models without BatchNormalization as having nothing to fold', () => {
    expect(foldBatchNormalization(loadFixture('tinybert-spam'))).toEqual({ folded: 0, foldedInto: [], notFolded: [] });
  });
});
