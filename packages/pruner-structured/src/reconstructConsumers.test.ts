import { arrayToTensor, DataType, makeNode, makeTensorValueInfo, type OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { analyzeDependencies } from './analyzeDependencies.js';
import { applyPruningPlan } from './applyPruningPlan.js';
import { modelFeeds, recalibrateBatchNorm } from './recalibrateBatchNorm.js';
import { reconstructConsumers, solveSymmetricPositiveDefinite } from './reconstructConsumers.js';
import { StructuredPruner } from './StructuredPruner.js';
import { fixturePath, handBuiltModel, loadFixture, maxRelativeDifference, randomValues, runOnce, weight } from './test-support/pruningModels.js';

/** Batches of `count` seeded random images [count, channels, size, size] under the input name `x`. */
function randomBatches(batches: number, count: number, channels: number, size: number, seed: number): Array<Record<string, Tensor>> {
  return Array.from({ length: batches }, (_, b) => ({ x: new Tensor('float32', randomValues(count * channels * size * size, seed + b), [count, channels, size, size]) }));
}

/** Prunes `model` by hand: the group produced by `layer` keeps `kept`. */
function pruneByHand(model: OnnxModel, layer: string, kept: number[]): { pruned: OnnxModel; analysis: ReturnType<typeof analyzeDependencies>; plan: Map<string, number[]> } {
  const analysis = analyzeDependencies(model.proto);
  const group = analysis.groups.find((g) => g.layers.includes(layer));
  if (group === undefined) throw new Error(`no group produced by ${layer}`);
  const plan = new Map([[group.name, kept]]);
  const pruned = model.clone();
  applyPruningPlan(pruned.proto, analysis, plan);
  pruned.graph.invalidate();
  return { pruned, analysis, plan };
}

/**
 * x[N,4,6,6] -> conv_a (8 channels, 3x3, bias) -> conv_b (5, 3x3, bias) = y. Channels 4..7 of
 * conv_a are fixed linear combinations of channels 0..3 (weights and biases), so conv_b can read
 * channels 0..3 alone and still compute exactly the original y: the least-squares refit must find it.
 */
function linearlyRedundantModel(): OnnxModel {
  const wa = randomValues(8 * 4 * 9, 11);
  const ba = randomValues(8, 12);
  const mix = randomValues(4 * 4, 13);
  for (let j = 0; j < 4; j++) {
    for (let e = 0; e < 36; e++) {
      let value = 0;
      for (let k = 0; k < 4; k++) value += (mix[j * 4 + k] as number) * (wa[k * 36 + e] as number);
      wa[(4 + j) * 36 + e] = value;
    }
    let bias = 0;
    for (let k = 0; k < 4; k++) bias += (mix[j * 4 + k] as number) * (ba[k] as number);
    ba[4 + j] = bias;
  }
  return handBuiltModel(
    [
      makeNode('Conv', ['x', 'wa', 'ba'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
      makeNode('Conv', ['a', 'wb', 'bb'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_b'),
    ],
    [arrayToTensor('wa', wa, [8, 4, 3, 3]), arrayToTensor('ba', ba, [8]), weight('wb', [5, 8, 3, 3], 14), weight('bb', [5], 15)],
    [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 4, 6, 6])],
    [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 5, 6, 6])],
  );
}

describe('reconstructConsumers', () => {
  it('should recover the exact output of a layer whose removed input channels are linear combinations of the kept ones', async () => {
    const model = linearlyRedundantModel();
    const { pruned, analysis, plan } = pruneByHand(model, 'conv_a', [0, 1, 2, 3]);
    const probe = new Tensor('float32', randomValues(3 * 4 * 36, 99), [3, 4, 6, 6]);
    const expected = await runOnce(model, probe);
    expect(maxRelativeDifference(await runOnce(pruned, probe), expected)).toBeGreaterThan(0.1);
    const report = await reconstructConsumers(model, pruned, analysis, plan, randomBatches(2, 4, 4, 6, 1));
    expect(report.skipped).toEqual([]);
    expect(report.layers).toHaveLength(1);
    const [layer] = report.layers;
    expect(layer).toMatchObject({ node: 'conv_b', opType: 'Conv', unknowns: 4 * 9 + 1, outputs: 5, rows: 2 * 4 * 36 });
    expect(layer?.errorBefore).toBeGreaterThan(0.1);
    expect(layer?.errorAfter).toBeLessThan(1e-5);
    // On inputs the fit never saw, the pruned model now computes the original's output.
    expect(maxRelativeDifference(await runOnce(pruned, probe), expected)).toBeLessThan(1e-5);
  });

  it('should skip a layer with fewer than 4 calibration rows per unknown, leaving its weights as pruned', async () => {
    const model = linearlyRedundantModel();
    const { pruned, analysis, plan } = pruneByHand(model, 'conv_a', [0, 1, 2, 3]);
    const before = tensorToArray(pruned.graph.getInitializer('wb') as never);
    // One 6x6 image: 36 rows for 37 unknowns.
    const report = await reconstructConsumers(model, pruned, analysis, plan, randomBatches(1, 1, 4, 6, 1));
    expect(report.layers).toEqual([]);
    expect(report.skipped).toEqual([{ node: 'conv_b', opType: 'Conv', reason: 'only 36 calibration rows for 37 unknowns per output (at least 4 per unknown needed): give more calibration samples' }]);
    expect(tensorToArray(pruned.graph.getInitializer('wb') as never)).toEqual(before);
  });

  it('should solve symmetric positive definite systems as Gaussian elimination does (float64 reference)', () => {
    const n = 7;
    const m = 3;
    const factor = Float64Array.from(randomValues(n * n, 5));
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] = (a[i * n + j] as number) + (factor[i * n + k] as number) * (factor[j * n + k] as number);
    for (let i = 0; i < n; i++) a[i * n + i] = (a[i * n + i] as number) + 0.1;
    const b = Float64Array.from(randomValues(n * m, 6));
    const solution = solveSymmetricPositiveDefinite(a, b, n, m) as Float64Array;
    // Reference: Gauss-Jordan elimination with partial pivoting on [A | B].
    const width = n + m;
    const augmented = new Float64Array(n * width);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) augmented[i * width + j] = a[i * n + j] as number;
      for (let c = 0; c < m; c++) augmented[i * width + n + c] = b[i * m + c] as number;
    }
    for (let col = 0; col < n; col++) {
      let pivot = col;
      for (let r = col + 1; r < n; r++) if (Math.abs(augmented[r * width + col] as number) > Math.abs(augmented[pivot * width + col] as number)) pivot = r;
      for (let j = 0; j < width; j++) {
        const swap = augmented[col * width + j] as number;
        augmented[col * width + j] = augmented[pivot * width + j] as number;
        augmented[pivot * width + j] = swap;
      }
      const scale = augmented[col * width + col] as number;
      for (let j = 0; j < width; j++) augmented[col * width + j] = (augmented[col * width + j] as number) / scale;
      for (let r = 0; r < n; r++) {
        if (r === col) continue;
        const f = augmented[r * width + col] as number;
        for (let j = 0; j < width; j++) augmented[r * width + j] = (augmented[r * width + j] as number) - f * (augmented[col * width + j] as number);
      }
    }
    for (let i = 0; i < n; i++) for (let c = 0; c < m; c++) expect(solution[i * m + c]).toBeCloseTo(augmented[i * width + n + c] as number, 10);
    const indefinite = Float64Array.from([1, 2, 2, 1]);
    expect(solveSymmetricPositiveDefinite(indefinite, Float64Array.from([1, 1]), 2, 1)).toBeUndefined();
  });

  it('should skip a depthwise Conv reading removed channels with the reason, and refit the Conv after it', async () => {
    const model = handBuiltModel(
      [
        makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [1, 1] }, 'conv_a'),
        makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
        makeNode('Conv', ['a_relu', 'wd'], ['d'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }, 'depthwise'),
        makeNode('Conv', ['d', 'wc'], ['y'], { kernel_shape: [1, 1] }, 'conv_c'),
      ],
      [weight('wa', [8, 3, 1, 1], 1), weight('wd', [8, 1, 3, 3], 2), weight('wc', [4, 8, 1, 1], 3)],
      [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 3, 6, 6])],
      [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 4, 6, 6])],
    );
    const { pruned, analysis, plan } = pruneByHand(model, 'conv_a', [1, 3, 4, 6]);
    const depthwiseWeight = tensorToArray(pruned.graph.getInitializer('wd') as never);
    const report = await reconstructConsumers(model, pruned, analysis, plan, randomBatches(2, 4, 3, 6, 7));
    expect(report.skipped).toEqual([{ node: 'depthwise', opType: 'Conv', reason: expect.stringMatching(/depthwise/) as unknown as string }]);
    expect(report.layers.map((l) => l.node)).toEqual(['conv_c']);
    expect(report.layers[0]?.errorAfter).toBeLessThan(report.layers[0]?.errorBefore as number);
    expect(tensorToArray(pruned.graph.getInitializer('wd') as never)).toEqual(depthwiseWeight);
  });

  it('should leave ResNet-8 at 50% (global L1) more accurate after reconstruction and BatchNorm re-estimation than after BatchNorm re-estimation alone', async () => {
    const original = await loadFixture('resnet8-fmnist');
    const pruner = new StructuredPruner(original);
    const { model: pruned, plan } = pruner.prune({ ratio: 0.5, roundTo: 8 });
    const calib = await loadDataset({ x: fixturePath('fmnist-calib.x.npy') });
    const feeds = Array.from(modelFeeds(calib, ['input'], 64, 192));
    const val = (await loadDataset({ x: fixturePath('fmnist-val-2k.x.npy'), y: fixturePath('fmnist-val-2k.y.npy') })).slice(0, 500);
    const recalibrated = pruned.clone();
    await recalibrateBatchNorm(recalibrated, feeds);
    const report = await reconstructConsumers(original, pruned, pruner.analysis, plan, feeds, { maxRows: 2000 });
    await recalibrateBatchNorm(pruned, feeds);
    const batchNormOnly = await modelAccuracy(recalibrated, val);
    const reconstructed = await modelAccuracy(pruned, val);
    console.log(`ResNet-8 50% (192 calibration samples, 500 evaluation samples): BatchNorm re-estimation ${batchNormOnly}, reconstruction + BatchNorm re-estimation ${reconstructed}`);
    // 192 samples leave the fc layer (33 unknowns) enough rows: every reader of removed channels is refitted.
    expect(report.layers).toHaveLength(9);
    for (const layer of report.layers) expect(layer.errorAfter).toBeLessThan(layer.errorBefore);
    expect(reconstructed).toBeGreaterThan(batchNormOnly + 0.2);
  });
});
