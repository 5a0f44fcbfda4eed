import { ConfigError } from '@open-autoglm/core';
import { DataType, OnnxModel, type TensorProto, tensorToArray } from '@open-autoglm/onnx';
import { Dataset, loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { quantizationAwareTraining } from './quantizationAwareTraining.js';
import { fixture, optimizedOpCounts } from './test-support/fixtures.js';
import { gemmChain } from './test-support/gemmChain.js';

describe('quantizationAwareTraining', () => {
  it('should fine-tune through fake quantization and export real QDQ that computes what was trained', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const train = await loadDataset({ x: fixture('fmnist-calib.x.npy'), y: fixture('fmnist-calib.y.npy') });
    const validation = (await loadDataset({ x: fixture('fmnist-val-2k.x.npy'), y: fixture('fmnist-val-2k.y.npy') })).slice(0, 500);
    const result = await quantizationAwareTraining(model, train.slice(0, 200), { train, validation, epochs: 1, learningRate: 1e-4 });
    const count = (m: OnnxModel, op: string): number => m.graph.nodes.filter((n) => n.opType === op).length;
    // The same QDQ structure as the post-training quantization it started from.
    for (const op of ['QuantizeLinear', 'DequantizeLinear', 'Conv', 'Gemm']) expect(count(result.model, op), op).toBe(count(result.initial.model, op));
    // Weights moved (still int8) ...
    const weightOf = (m: OnnxModel): Int8Array => {
      const conv = m.graph.nodes.find((n) => n.name === '/conv2/Conv');
      const dq = m.graph.producerOf(conv?.input[1] ?? '');
      const stored = m.graph.getInitializer(dq?.input[0] ?? '');
      if (stored === undefined) throw new Error('conv2 has no stored weight behind a DequantizeLinear');
      return tensorToArray(stored) as Int8Array;
    };
    expect(weightOf(result.model)).toBeInstanceOf(Int8Array);
    expect(weightOf(result.model)).not.toEqual(weightOf(result.initial.model));
    // ... and the exported model scores what the trainer measured on the fake-quantized one
    // (up to the int32 rounding of the biases).
    const trainedAccuracy = result.history.at(-1)?.validationAccuracy as number;
    expect(Math.abs((await modelAccuracy(result.model, validation)) - trainedAccuracy)).toBeLessThanOrEqual(0.004);
    expect((await optimizedOpCounts(result.model)).QGemm).toBe(3);
  });

  it('should train a weight read by two layers (tied) as one parameter and export it as one int8 initializer', async () => {
    const weight = Float32Array.from({ length: 16 }, (_, i) => 0.5 * Math.sin(3 * i + 1));
    const model = gemmChain(4, [
      { weight, dims: [4, 4], bias: Float32Array.of(0.1, 0.2, 0.3, 0.4), transB: 1 },
      { tiedTo: 0, bias: Float32Array.of(-0.1, 0, 0.1, 0.2), transB: 1 },
    ]);
    const samples = 64;
    const x = Float32Array.from({ length: samples * 4 }, (_, i) => Math.cos(i * 0.7));
    const y = BigInt64Array.from({ length: samples }, (_, n) => BigInt(n % 4));
    const train = new Dataset(new Map([['x', { dtype: 'float32' as const, shape: [samples, 4], data: x, file: undefined }]]), {
      dtype: 'int64',
      shape: [samples],
      data: y,
      file: undefined,
    });
    const result = await quantizationAwareTraining(model, train, { train, validation: train, epochs: 3, batchSize: 16, learningRate: 0.05 });
    const tiedWeight = (m: OnnxModel): TensorProto[] => m.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.dims.length === 2);
    const [before] = tiedWeight(result.initial.model);
    const [after, ...others] = tiedWeight(result.model);
    expect(others).toHaveLength(0);
    expect(result.model.graph.consumersOf(after!.name).map((n) => n.opType)).toEqual(['DequantizeLinear', 'DequantizeLinear']);
    expect(tensorToArray(after!)).not.toEqual(tensorToArray(before!));
    // The exported model scores what the trainer measured on the fake-quantized one, fused or not.
    const trained = result.history.at(-1)?.validationAccuracy as number;
    expect(Math.abs((await modelAccuracy(result.model, train)) - trained)).toBeLessThanOrEqual(1 / samples);
    expect((await optimizedOpCounts(result.model)).QGemm).toBe(2);
  });

  it('should need labelled training data', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const unlabelled = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 16);
    await expect(quantizationAwareTraining(model, unlabelled, { train: unlabelled })).rejects.toThrow(ConfigError);
  });
});
