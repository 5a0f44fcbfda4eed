import { ConfigError } from '@open-autoglm/core';
import { OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { loadDataset } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { quantizationAwareTraining } from './quantizationAwareTraining.js';
import { modelAccuracy } from './modelAccuracy.js';
import { fixture, optimizedOpCounts } from './test-support/fixtures.js';

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

  it('should need labelled training data', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const unlabelled = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 16);
    await expect(quantizationAwareTraining(model, unlabelled, { train: unlabelled })).rejects.toThrow(ConfigError);
  });
});
