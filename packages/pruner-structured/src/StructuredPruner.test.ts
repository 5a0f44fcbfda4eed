import { ConfigError } from '@open-autoglm/core';
import { countModelStats, DataType, makeTensorValueInfo, type OnnxModel, tensorDims, tensorToArray } from '@open-autoglm/onnx';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DependencyGroup } from './analyzeDependencies.js';
import { StructuredPruner } from './StructuredPruner.js';
import {
  concatModel,
  evalRows,
  FIXTURES,
  loadFixture,
  maxRelativeDifference,
  optimizedOpCounts,
  randomValues,
  runOnce,
  smallConvModel,
  zeroRemovedInputs,
} from './test-support/pruningModels.js';
import { Tensor } from 'onnxruntime-node';

describe('StructuredPruner', () => {
  const models = new Map<string, OnnxModel>();
  beforeAll(async () => {
    for (const name of FIXTURES) models.set(name, await loadFixture(name));
  });

  for (const name of FIXTURES) {
    it(`should prune ${name} at 30/50/70% into models that run, match their prediction and compute what the original computes without the removed units`, async () => {
      const model = models.get(name) as OnnxModel;
      const pruner = new StructuredPruner(model);
      const input = await evalRows(name, 4);
      let previousMacs = pruner.analysis.macs;
      for (const ratio of [0.3, 0.5, 0.7]) {
        const predicted = pruner.predict({ ratio });
        const { model: pruned, report } = pruner.prune({ ratio });
        const counted = countModelStats(pruned.proto);
        expect({ params: counted.params, macs: counted.macs }).toEqual(predicted);
        expect(report.actual).toEqual(predicted);
        expect(predicted.macs).toBeLessThan(previousMacs);
        previousMacs = predicted.macs;
        expect(pruned.problems()).toEqual([]);
        const plan = pruner.plan({ ratio });
        const reference = zeroRemovedInputs(model, pruner.analysis, plan);
        const [prunedOut, referenceOut] = [await runOnce(pruned, input), await runOnce(reference, input)];
        expect(prunedOut.length).toBe(referenceOut.length);
        expect(maxRelativeDifference(referenceOut, prunedOut)).toBeLessThan(1e-4);
      }
    });
  }

  it('should give outputs bitwise equal to the input model for a 0% plan', async () => {
    for (const name of FIXTURES) {
      const model = models.get(name) as OnnxModel;
      const { model: pruned, report } = new StructuredPruner(model).prune({ ratio: 0 });
      expect(report.actual).toEqual(report.original);
      const input = await evalRows(name, 4);
      expect(await runOnce(pruned, input)).toEqual(await runOnce(model, input));
    }
  });

  it('should emit the original graph in a smaller size, which onnxruntime fuses as it fuses the original', async () => {
    // A leftover node, a bias dropped or a constant of another rank would cost a fusion (a BN not
    // folded into its Conv, an activation not fused) and time that no channel count explains.
    // At level `all`, widths below the NCHWc block (16 on AVX-512) change only the layout: such
    // a MaxPool stays NCHW and a Conv reading such a tensor takes it back from NCHWc (ReorderOutput).
    const layoutFree = (counts: Record<string, number>): Record<string, number> => {
      const merged: Record<string, number> = {};
      for (const [op, count] of Object.entries(counts)) {
        const plain = op.replace(/^com\.microsoft\.nchwc:/, '');
        if (plain !== 'ReorderOutput' && plain !== 'ReorderInput') merged[plain] = (merged[plain] ?? 0) + count;
      }
      return merged;
    };
    // Rewritten Reshape targets become initializers in place of Constant nodes: the same to onnxruntime.
    const nodeForms = (model: OnnxModel): string[] =>
      model.graph.nodes.filter((n) => n.opType !== 'Constant').map((n) => `${n.domain}:${n.opType}/${n.input.length}/${n.attribute.map((a) => a.name).join(',')}`);
    for (const name of FIXTURES) {
      const model = models.get(name) as OnnxModel;
      const { model: pruned } = new StructuredPruner(model).prune({ ratio: 0.5, roundTo: 8 });
      expect(nodeForms(pruned), name).toEqual(nodeForms(model));
      expect(await optimizedOpCounts(pruned, 'extended'), name).toEqual(await optimizedOpCounts(model, 'extended'));
      expect(layoutFree(await optimizedOpCounts(pruned, 'all')), name).toEqual(layoutFree(await optimizedOpCounts(model, 'all')));
    }
  });

  it("should put resnet8's projection shortcut in the group of the block it joins", () => {
    const pruner = new StructuredPruner(models.get('resnet8-fmnist') as OnnxModel);
    const group = pruner.analysis.groups.find((g) => g.layers.includes('/layer2/shortcut/shortcut.0/Conv'));
    expect(group?.layers).toEqual(['/layer2/conv2/Conv', '/layer2/shortcut/shortcut.0/Conv']);
    expect(group?.frozenReasons).toEqual([]);
    const stem = pruner.analysis.groups.find((g) => g.layers.includes('/conv1/Conv'));
    expect(stem?.layers).toEqual(['/conv1/Conv', '/layer1/conv2/Conv']);
  });

  it("should find tinybert's attention heads and FFN neurons, and freeze the LayerNorm-bound hidden size", () => {
    const pruner = new StructuredPruner(models.get('tinybert-spam') as OnnxModel);
    const groups = new Map(pruner.analysis.groups.map((g) => [g.name, g]));
    const heads = groups.get('/layers.0/attn/query/MatMul');
    expect(heads).toMatchObject({ kind: 'heads', units: 2, unitSize: 32, frozenReasons: [] });
    expect(heads?.layers).toEqual(['/layers.0/attn/query/MatMul', '/layers.0/attn/key/MatMul', '/layers.0/attn/value/MatMul']);
    expect(groups.get('/layers.0/ffn1/MatMul')).toMatchObject({ kind: 'neurons', units: 128, frozenReasons: [] });
    expect(groups.get('/layers.0/ffn2/MatMul')?.frozenReasons.join()).toMatch(/LayerNormalization/);
    const { model: pruned } = pruner.prune({ perLayer: { '/layers.0/attn/query/MatMul': 0.5 } });
    const shapes = pruned.graph.nodes.filter((n) => n.opType === 'Reshape').map((n) => Array.from(tensorToArray(pruned.graph.constantValue(n.input[1] ?? '') as never), Number));
    expect(shapes.slice(0, 4)).toEqual([[-1, 128, 1, 32], [-1, 128, 1, 32], [-1, 128, 1, 32], [-1, 128, 32]]);
  });

  it('should freeze only the group that reaches an unknown custom-domain op, and prune the rest', () => {
    const pruner = new StructuredPruner(smallConvModel({ customOp: true }));
    const byName = new Map(pruner.analysis.groups.map((g) => [g.name, g]));
    expect(byName.get('conv_a')?.frozenReasons).toEqual(['"custom" (com.example.Scramble): custom-domain op "com.example.Scramble" has no channel rule']);
    expect(byName.get('conv_c')?.frozenReasons).toEqual([]);
    expect(byName.get('conv_b')?.layers).toEqual(['conv_b', 'conv_d']);
    const { model, report } = pruner.prune({ ratio: 0.5 });
    expect(report.actual).toEqual(report.predicted);
    expect(report.groups.find((g) => g.group === 'conv_a')).toMatchObject({ unitsBefore: 8, unitsAfter: 8, frozen: true });
    expect(report.groups.find((g) => g.group === 'conv_c')?.unitsAfter).toBeLessThan(6);
    expect(tensorDims(model.graph.getInitializer('scale_c') as never)[0]).toBe(report.groups.find((g) => g.group === 'conv_c')?.unitsAfter);
  });

  it('should prune a residual join with a per-channel Mul constant and match the zeroed reference', async () => {
    const model = smallConvModel();
    const pruner = new StructuredPruner(model);
    const options = { ratio: 0.4, criterion: 'l2' as const };
    const { model: pruned, report } = pruner.prune(options);
    expect(report.actual).toEqual(report.predicted);
    const input = new Tensor('float32', randomValues(2 * 3 * 8 * 8, 11), [2, 3, 8, 8]);
    const reference = zeroRemovedInputs(model, pruner.analysis, pruner.plan(options));
    expect(maxRelativeDifference(await runOnce(reference, input), await runOnce(pruned, input))).toBeLessThan(1e-5);
  });

  it('should prune the inputs of a channel Concat and slice what follows it at their offsets', async () => {
    const model = concatModel();
    const pruner = new StructuredPruner(model);
    expect(pruner.analysis.concatenations).toEqual([
      expect.objectContaining({ name: 'concat', channels: 14, segments: [{ group: 'conv_a', offset: 0, channels: 8 }, { group: 'conv_b', offset: 8, channels: 6 }] }),
    ]);
    const options = { perLayer: { conv_a: 0.5, conv_b: 0.5 } };
    const { model: pruned, report } = pruner.prune(options);
    expect(report.actual).toEqual(report.predicted);
    expect(tensorDims(pruned.graph.getInitializer('gamma') as never)).toEqual([7]);
    expect(tensorDims(pruned.graph.getInitializer('wc') as never)).toEqual([4, 7, 3, 3]);
    const input = new Tensor('float32', randomValues(2 * 3 * 8 * 8, 5), [2, 3, 8, 8]);
    const reference = zeroRemovedInputs(model, pruner.analysis, pruner.plan(options));
    expect(maxRelativeDifference(await runOnce(reference, input), await runOnce(pruned, input))).toBeLessThan(1e-5);
  });

  it('should freeze the groups concatenated into channels that cannot change', () => {
    const model = concatModel();
    model.graph.addOutput(makeTensorValueInfo('ab', DataType.FLOAT));
    const groups = new Map(new StructuredPruner(model).analysis.groups.map((g) => [g.name, g]));
    expect(groups.get('conv_a')?.frozenReasons.join()).toMatch(/"concat" \(Concat\) concatenates these channels, and they cannot change there: .*graph output/);
    expect(groups.get('conv_b')?.frozenReasons.length).toBe(1);
  });

  it('should honour per-layer ratios, roundTo and minUnits', () => {
    const pruner = new StructuredPruner(models.get('vgg11bn-mnist') as OnnxModel);
    const counts = pruner.keptCounts({ perLayer: { '/features/features.4/Conv': 0.5, '/features/features.8/Conv': 0.3 }, roundTo: 8 });
    expect(counts.get('/features/features.4/Conv')).toBe(16);
    expect(counts.get('/features/features.8/Conv')).toBe(48); // 64 - 19 = 45 -> 48
    expect(pruner.keptCounts({ perLayer: { '/features/features.0/Conv': 0.9 }, minUnits: 4 }).get('/features/features.0/Conv')).toBe(4);
  });

  it('should rank every criterion and keep the most important units', () => {
    const pruner = new StructuredPruner(models.get('lenet5-fmnist') as OnnxModel);
    const group = pruner.analysis.groups.find((g) => g.name === '/conv2/Conv') as DependencyGroup;
    for (const criterion of ['l1', 'l2', 'fpgm', 'bn', 'random'] as const) {
      const scores = pruner.importance(group, { criterion });
      expect(scores.length).toBe(16);
      expect(scores.every((s) => Number.isFinite(s) && s >= 0)).toBe(true);
      const kept = pruner.plan({ criterion, perLayer: { '/conv2/Conv': 0.5 } }).get('/conv2/Conv') as number[];
      const threshold = Math.min(...kept.map((u) => scores[u] as number));
      expect([...scores].filter((s) => s > threshold).length).toBeLessThan(8);
    }
    expect(pruner.importance(group, { criterion: 'random', seed: 1 })).not.toEqual(pruner.importance(group, { criterion: 'random', seed: 2 }));
  });

  it('should compute L1 group importance as the mean over members of each slice sum (hand-computed)', () => {
    const pruner = new StructuredPruner(models.get('lenet5-fmnist') as OnnxModel);
    const graph = pruner.model.graph;
    const group = pruner.analysis.groups.find((g) => g.name === '/fc2/Gemm') as DependencyGroup;
    const produce = tensorToArray(graph.constantValue('fc2.weight') as never) as Float32Array; // [84, 120]
    const read = tensorToArray(graph.constantValue('fc3.weight') as never) as Float32Array; // [10, 84]
    let expected = 0;
    for (let i = 0; i < 120; i++) expected += Math.abs(produce[5 * 120 + i] as number);
    let readSum = 0;
    for (let o = 0; o < 10; o++) readSum += Math.abs(read[o * 84 + 5] as number);
    expect(pruner.importance(group, { criterion: 'l1' })[5]).toBeCloseTo((expected + readSum) / 2, 6);
  });

  it('should reject ratios outside [0, 1), unknown per-layer groups and models without prunable groups', () => {
    const pruner = new StructuredPruner(models.get('lenet5-fmnist') as OnnxModel);
    expect(() => pruner.prune({ ratio: 1 })).toThrow(ConfigError);
    expect(() => pruner.prune({ ratio: -0.1 })).toThrow(/in \[0, 1\)/);
    expect(() => pruner.prune({ perLayer: { conv9: 0.5 } })).toThrow(/"conv9".*Prunable groups are named after their first layer: "\/conv1\/Conv"/);
    expect(() => pruner.prune({ perLayer: { '/fc3/Gemm': 0.5 } })).toThrow(/graph output/);
    const linear = new StructuredPruner(models.get('lenet5-fmnist') as OnnxModel);
    expect(() => linear.prune({ ratio: 0.5, protect: ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm', '/fc2/Gemm'] })).toThrow(/has no prunable channel groups/);
  });
});
