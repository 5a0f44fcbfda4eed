import { DataType, makeTensorValueInfo, type OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { createSession, evaluateAccuracy, loadDataset, readArray } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { recalibrateBatchNorm } from './recalibrateBatchNorm.js';
import { StructuredPruner } from './StructuredPruner.js';
import { fixturePath, loadFixture } from './test-support/pruningModels.js';

function* batchesOf(x: { data: Float32Array; shape: readonly number[] }, size: number, count: number): Generator<Record<string, Tensor>> {
  const row = x.shape.slice(1).reduce((a, b) => a * b, 1);
  for (let start = 0; start < count; start += size) {
    yield { input: new Tensor('float32', x.data.subarray(start * row, (start + size) * row), [size, ...x.shape.slice(1)]) };
  }
}

async function floatRows(split: string): Promise<{ data: Float32Array; shape: readonly number[] }> {
  const array = await readArray(fixturePath(`${split}.x.npy`));
  if (!(array.data instanceof Float32Array)) throw new Error(`${split} is not float32`);
  return { data: array.data, shape: array.shape };
}

async function accuracyOf(model: OnnxModel, split: string, samples: number): Promise<number> {
  const dataset = (await loadDataset({ x: fixturePath(`${split}.x.npy`), y: fixturePath(`${split}.y.npy`) })).slice(0, samples);
  return (await evaluateAccuracy(await createSession(model.toBytes(), { device: 'cpu', threads: 1 }), dataset, { batch: 250 })).accuracy;
}

describe('recalibrateBatchNorm', () => {
  it('should set the first BatchNorm of a pruned LeNet-5 to the batch-averaged mean and unbiased variance of its input (float64 reference)', async () => {
    const { model: pruned } = new StructuredPruner(await loadFixture('lenet5-fmnist')).prune({ ratio: 0.3 });
    const calib = await floatRows('fmnist-calib');
    // Reference: the pruned conv1 output exposed as a graph output, statistics in float64.
    const probe = pruned.clone();
    probe.graph.addOutput(makeTensorValueInfo('/conv1/Conv_output_0', DataType.FLOAT));
    const session = await createSession(probe.toBytes(), { device: 'cpu', threads: 1 });
    const channels = Number(probe.graph.getInitializer('conv1.weight')?.dims[0]);
    const mean = new Float64Array(channels);
    const variance = new Float64Array(channels);
    let batches = 0;
    for (const feeds of batchesOf(calib, 100, 400)) {
      const out = (await session.run(feeds, ['/conv1/Conv_output_0']))['/conv1/Conv_output_0'] as Tensor;
      const data = out.data as Float32Array;
      const spatial = data.length / (100 * channels);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        let squares = 0;
        for (let n = 0; n < 100; n++) for (let i = 0; i < spatial; i++) sum += data[(n * channels + c) * spatial + i] as number;
        const m = sum / (100 * spatial);
        for (let n = 0; n < 100; n++) for (let i = 0; i < spatial; i++) squares += ((data[(n * channels + c) * spatial + i] as number) - m) ** 2;
        mean[c] = (mean[c] as number) + m;
        variance[c] = (variance[c] as number) + squares / (100 * spatial - 1);
      }
      batches++;
    }
    const report = await recalibrateBatchNorm(pruned, batchesOf(calib, 100, 400));
    expect(report).toEqual({ layers: ['/bn1/BatchNormalization', '/bn2/BatchNormalization'], batches: 4, samples: 400 });
    const runningMean = tensorToArray(pruned.graph.getInitializer('bn1.running_mean') as never) as Float32Array;
    const runningVar = tensorToArray(pruned.graph.getInitializer('bn1.running_var') as never) as Float32Array;
    for (let c = 0; c < channels; c++) {
      expect(runningMean[c]).toBeCloseTo((mean[c] as number) / batches, 5);
      expect(Math.abs((runningVar[c] as number) - (variance[c] as number) / batches) / ((variance[c] as number) / batches)).toBeLessThan(1e-4);
    }
  });

  it('should recover most of the accuracy VGG-11-BN loses at 30% global L1 pruning', async () => {
    const { model: pruned } = new StructuredPruner(await loadFixture('vgg11bn-mnist')).prune({ ratio: 0.3 });
    const before = await accuracyOf(pruned, 'mnist-test', 500);
    const calib = await floatRows('mnist-calib');
    await recalibrateBatchNorm(pruned, batchesOf(calib, 100, 500));
    const after = await accuracyOf(pruned, 'mnist-test', 500);
    expect(before).toBeLessThan(0.5);
    expect(after).toBeGreaterThan(0.9);
  });

  it('should re-estimate each BatchNorm of a model whose nodes are unnamed as it does when they are named', async () => {
    const { model: named } = new StructuredPruner(await loadFixture('lenet5-fmnist')).prune({ ratio: 0.3 });
    const unnamed = named.clone();
    for (const node of unnamed.graph.nodes) node.name = '';
    unnamed.graph.invalidate();
    const calib = await floatRows('fmnist-calib');
    await recalibrateBatchNorm(named, batchesOf(calib, 100, 200));
    const report = await recalibrateBatchNorm(unnamed, batchesOf(calib, 100, 200));
    expect(report.layers).toHaveLength(2);
    for (const name of ['bn1.running_mean', 'bn1.running_var', 'bn2.running_mean', 'bn2.running_var']) {
      expect(tensorToArray(unnamed.graph.getInitializer(name) as never)).toEqual(tensorToArray(named.graph.getInitializer(name) as never));
    }
  });

  it('should leave a model without BatchNorm unchanged', async () => {
    const model = await loadFixture('tinybert-spam');
    const bytes = model.toBytes();
    expect(await recalibrateBatchNorm(model, [])).toEqual({ layers: [], batches: 0, samples: 0 });
    expect(Buffer.from(model.toBytes()).equals(Buffer.from(bytes))).toBe(true);
  });
});
