import { create } from '@bufbuild/protobuf';
import { DatasetError, ModelFormatError, UnsupportedOperationError } from '@open-autoglm/core';
import { arrayToTensor, DataType, makeNode, makeTensorValueInfo, ModelProtoSchema, OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeStatic } from './quantizeStatic.js';
import { fixture, optimizedOpCounts } from './test-support/fixtures.js';

const FMNIST_CALIB = { x: fixture('fmnist-calib.x.npy') };
const FMNIST_VAL = { x: fixture('fmnist-val-2k.x.npy'), y: fixture('fmnist-val-2k.y.npy') };

describe('quantizeStatic', () => {
  let resnet8: OnnxModel;
  beforeAll(async () => {
    resnet8 = await OnnxModel.load(fixture('resnet8-fmnist.onnx'));
  });

  it('should keep resnet8 within 0.3 point of fp32 and fuse every Conv but the 1-channel first one, every Add, pool and Gemm', async () => {
    const calibration = await loadDataset(FMNIST_CALIB);
    const validation = await loadDataset(FMNIST_VAL);
    const result = await quantizeStatic(resnet8, calibration);
    expect(result.floatNodes.map((n) => n.node)).toEqual(['/conv1/Conv']);
    const counts = await optimizedOpCounts(result.model);
    expect(counts).toMatchObject({ QLinearConv: 8, QLinearAdd: 3, QLinearGlobalAveragePool: 1, QGemm: 1, Conv: 1 });
    // Nothing else left running in float: no DequantizeLinear, no Add, no Relu.
    for (const op of ['FusedConv', 'Add', 'Relu', 'DequantizeLinear', 'Gemm']) expect(counts[op]).toBeUndefined();
    const drop = (await modelAccuracy(resnet8, validation)) - (await modelAccuracy(result.model, validation));
    expect(drop).toBeLessThanOrEqual(0.003);
    // The input model is untouched.
    expect(resnet8.graph.nodes.some((n) => n.opType === 'QuantizeLinear')).toBe(false);
  });

  it('should keep lenet5 and vgg11bn within 0.3 point of fp32', async () => {
    for (const [name, calib, val] of [
      ['lenet5-fmnist', 'fmnist-calib', 'fmnist-val-2k'],
      ['vgg11bn-mnist', 'mnist-calib', 'mnist-test'],
    ] as const) {
      const model = await OnnxModel.load(fixture(`${name}.onnx`));
      const validation = await loadDataset({ x: fixture(`${val}.x.npy`), y: fixture(`${val}.y.npy`) });
      const result = await quantizeStatic(model, await loadDataset({ x: fixture(`${calib}.x.npy`) }));
      const counts = await optimizedOpCounts(result.model);
      expect(counts.QLinearConv, name).toBeGreaterThan(0);
      expect(counts.Conv, name).toBeUndefined();
      const drop = (await modelAccuracy(model, validation)) - (await modelAccuracy(result.model, validation));
      expect(drop, name).toBeLessThanOrEqual(0.003);
    }
  });

  it('should keep the attention-mask additions of tinybert in float and its accuracy within 1 point', async () => {
    const model = await OnnxModel.load(fixture('tinybert-spam.onnx'));
    const result = await quantizeStatic(model, (await loadDataset({ x: fixture('spam-calib.x.npy') })).slice(0, 100));
    const maskNodes = result.floatNodes.filter((n) => /attention mask/.test(n.reason)).map((n) => n.node);
    expect(maskNodes).toEqual(expect.arrayContaining(['/layers.0/attn/Add', '/layers.1/attn/Add']));
    expect(result.quantizedNodes.filter((n) => n.endsWith('MatMul')).length).toBeGreaterThan(10);
    const validation = await loadDataset({ x: fixture('spam-val.x.npy'), y: fixture('spam-val.y.npy') });
    const drop = (await modelAccuracy(model, validation)) - (await modelAccuracy(result.model, validation));
    expect(drop).toBeLessThanOrEqual(0.01);
  });

  it('should give weights int8 per-channel scales and biases int32 with scale s_in * s_w', async () => {
    const calibration = (await loadDataset(FMNIST_CALIB)).slice(0, 64);
    const result = await quantizeStatic(resnet8, calibration);
    const conv = result.weights[0];
    expect(conv?.axis).toBe(0);
    expect(conv?.bias).toBe(true);
    const graph = result.model.graph;
    const convNode = graph.nodes.find((n) => n.name === conv?.node);
    const biasDq = graph.producerOf(convNode?.input[2] ?? '');
    const inputDq = graph.producerOf(convNode?.input[0] ?? '');
    const initializer = (name: string | undefined): Float32Array =>
      tensorToArray(graph.getInitializer(name ?? '') ?? arrayToTensor('missing', new Float32Array(0), [0])) as Float32Array;
    const inputScale = initializer(inputDq?.input[1])[0] as number;
    const biasScales = initializer(biasDq?.input[1]);
    expect(biasDq?.opType).toBe('DequantizeLinear');
    expect(graph.getInitializer(biasDq?.input[0] ?? '')?.dataType).toBe(DataType.INT32);
    conv?.scales.forEach((s, c) => expect(biasScales[c]).toBe(Math.fround(s * inputScale)));
    // Per-tensor on request: one scale per weight.
    const perTensor = await quantizeStatic(resnet8, calibration, { perChannel: false });
    expect(perTensor.weights.every((w) => w.scales.length === 1 && w.axis === undefined)).toBe(true);
  });

  it('should keep excluded op types and nodes in float and say why', async () => {
    const calibration = (await loadDataset(FMNIST_CALIB)).slice(0, 64);
    const result = await quantizeStatic(resnet8, calibration, { exclude: ['Add', 'Gemm'], floatSingleChannelConv: false });
    expect(result.floatNodes.map((n) => n.opType).sort()).toEqual(['Add', 'Add', 'Add', 'Gemm']);
    expect(result.floatNodes[0]?.reason).toMatch(/excluded/);
    expect(result.model.graph.nodes.filter((n) => n.opType === 'Gemm')).toHaveLength(1);
  });

  it('should refuse an opset below 13, an already quantized model and calibration data of the wrong shape', async () => {
    const old = new OnnxModel(
      create(ModelProtoSchema, {
        irVersion: 7n,
        opsetImport: [{ domain: '', version: 12n }],
        graph: {
          name: 'old',
          node: [makeNode('Relu', ['x'], ['y'])],
          input: [makeTensorValueInfo('x', DataType.FLOAT, ['n', 4])],
          output: [makeTensorValueInfo('y', DataType.FLOAT, ['n', 4])],
        },
      }),
    );
    const calibration = (await loadDataset(FMNIST_CALIB)).slice(0, 16);
    await expect(quantizeStatic(old, calibration)).rejects.toThrow(UnsupportedOperationError);
    await expect(quantizeStatic(old, calibration)).rejects.toThrow(/opset 12.*opset 13 or newer/);
    const quantized = (await quantizeStatic(resnet8, calibration)).model;
    await expect(quantizeStatic(quantized, calibration)).rejects.toThrow(ModelFormatError);
    await expect(quantizeStatic(quantized, calibration)).rejects.toThrow(/already quantized/);
    const wrong = await loadDataset({ x: fixture('spam-calib.x.npy') });
    await expect(quantizeStatic(resnet8, wrong)).rejects.toThrow(DatasetError);
  });
});
