import { arrayToTensor, DataType, makeNode, makeTensorValueInfo, type OnnxModel } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { analyzeDependencies } from './analyzeDependencies.js';
import { StructuredPruner } from './StructuredPruner.js';
import { handBuiltModel, maxRelativeDifference, randomValues, runOnce, weight, zeroRemovedInputs } from './test-support/pruningModels.js';

const input = (name: string, channels: number): ReturnType<typeof makeTensorValueInfo> => makeTensorValueInfo(name, DataType.FLOAT, ['batch', channels, 4, 4]);
const output = (name: string): ReturnType<typeof makeTensorValueInfo> => makeTensorValueInfo(name, DataType.FLOAT);
const int64 = (name: string, values: number[]): ReturnType<typeof arrayToTensor> =>
  arrayToTensor(name, BigInt64Array.from(values.map(BigInt)), [values.length], DataType.INT64);

/** Runs the pruned model and the original with the removed units' readers zeroed, on the same input, for every output. */
async function expectEquivalent(model: OnnxModel, pruner: StructuredPruner, options: Parameters<StructuredPruner['prune']>[0]): Promise<void> {
  const { model: pruned, report } = pruner.prune(options);
  expect(report.actual).toEqual(report.predicted);
  const x = new Tensor('float32', randomValues(2 * 3 * 4 * 4, 17), [2, 3, 4, 4]);
  const reference = zeroRemovedInputs(model, pruner.analysis, pruner.plan(options));
  expect(maxRelativeDifference(await runOnce(reference, x), await runOnce(pruned, x))).toBeLessThan(1e-5);
}

/**
 * x -> conv_a(8) -> Relu -> Mul by `scale` [8,1,1] -> conv_b(4) -> y, where a graph input x2 of 8
 * channels also reads either conv_b's weight (through its own Conv) or `scale` (through its own
 * Mul), and an independent prunable chain x -> conv_f(8) -> Relu -> conv_g(4) -> z.
 */
function sharedTensorModel(shared: 'weight' | 'constant'): OnnxModel {
  const nodes = [
    makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
    makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
    makeNode('Mul', ['a_relu', 'scale'], ['a_scaled'], {}, 'scale_a'),
    makeNode('Conv', ['a_scaled', 'wb'], ['y'], { kernel_shape: [1, 1] }, 'conv_b'),
    shared === 'weight'
      ? makeNode('Conv', ['x2', 'wb'], ['y2'], { kernel_shape: [1, 1] }, 'conv_e')
      : makeNode('Mul', ['x2', 'scale'], ['y2'], {}, 'scale_e'),
    makeNode('Conv', ['x', 'wf'], ['f'], { kernel_shape: [1, 1] }, 'conv_f'),
    makeNode('Relu', ['f'], ['f_relu'], {}, 'relu_f'),
    makeNode('Conv', ['f_relu', 'wg'], ['z'], { kernel_shape: [1, 1] }, 'conv_g'),
  ];
  const initializers = [weight('wa', [8, 3, 3, 3], 1), weight('scale', [8, 1, 1], 2), weight('wb', [4, 8, 1, 1], 3), weight('wf', [8, 3, 1, 1], 4), weight('wg', [4, 8, 1, 1], 5)];
  return handBuiltModel(nodes, initializers, [input('x', 3), input('x2', 8)], [output('y'), output('y2'), output('z')]);
}

describe('analyzeDependencies', () => {
  for (const [shared, tensor, reader] of [
    ['weight', 'wb', '"conv_e" (Conv)'],
    ['constant', 'scale', '"scale_e" (Mul)'],
  ] as const) {
    it(`should freeze a group whose ${shared} "${tensor}" is also read by a node outside it, and prune the rest into a model that runs`, async () => {
      const model = sharedTensorModel(shared);
      const pruner = new StructuredPruner(model);
      const groups = new Map(pruner.analysis.groups.map((g) => [g.name, g]));
      expect(groups.get('conv_a')?.frozenReasons).toEqual([expect.stringContaining(`tensor "${tensor}" is also read by ${reader}, which does not follow these channels`)]);
      expect(groups.get('conv_f')?.frozenReasons).toEqual([]);
      const { model: pruned, report } = pruner.prune({ ratio: 0.5 });
      expect(report.groups.find((g) => g.group === 'conv_a')).toMatchObject({ unitsAfter: 8, frozen: true });
      expect(report.groups.find((g) => g.group === 'conv_f')?.unitsAfter).toBe(4);
      const x = new Tensor('float32', randomValues(2 * 3 * 4 * 4, 3), [2, 3, 4, 4]);
      const x2 = new Tensor('float32', randomValues(2 * 8 * 4 * 4, 4), [2, 8, 4, 4]);
      const { createSession } = await import('@open-autoglm/runtime');
      const session = await createSession(pruned.toBytes(), { device: 'cpu', threads: 1 });
      const outputs = await session.run({ x, x2 });
      expect(outputs.y2?.dims).toEqual(shared === 'weight' ? [2, 4, 4, 4] : [2, 8, 4, 4]);
    });
  }

  it('should follow Gemm with transB=0, MatMul weights, [1,C,1,1] and [C,1,1] constants and a depthwise Conv with a channel multiplier', async () => {
    const nodes = [
      makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
      makeNode('Mul', ['a', 'scale'], ['a_scaled'], {}, 'scale_a'),
      makeNode('Add', ['shift', 'a_scaled'], ['a_shifted'], {}, 'shift_a'),
      makeNode('Relu', ['a_shifted'], ['a_relu'], {}, 'relu_a'),
      makeNode('Conv', ['a_relu', 'wdw', 'bdw'], ['dw'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }, 'conv_dw'),
      makeNode('GlobalAveragePool', ['dw'], ['pooled'], {}, 'pool'),
      makeNode('Flatten', ['pooled'], ['flat'], { axis: 1 }, 'flatten'),
      makeNode('Gemm', ['flat', 'wg', 'bg'], ['g'], {}, 'gemm'),
      makeNode('Relu', ['g'], ['g_relu'], {}, 'relu_g'),
      makeNode('MatMul', ['g_relu', 'wm'], ['m'], {}, 'matmul'),
      makeNode('Add', ['m', 'bm'], ['m_bias'], {}, 'bias_m'),
      makeNode('Relu', ['m_bias'], ['m_relu'], {}, 'relu_m'),
      makeNode('MatMul', ['m_relu', 'wo'], ['y'], {}, 'out'),
    ];
    const initializers = [
      weight('wa', [8, 3, 3, 3], 11),
      weight('scale', [1, 8, 1, 1], 12),
      weight('shift', [8, 1, 1], 13),
      weight('wdw', [16, 1, 3, 3], 14),
      weight('bdw', [16], 15),
      weight('wg', [16, 6], 16),
      weight('bg', [6], 17),
      weight('wm', [6, 5], 18),
      weight('bm', [5], 19),
      weight('wo', [5, 3], 20),
    ];
    const model = handBuiltModel(nodes, initializers, [input('x', 3)], [output('y')]);
    const pruner = new StructuredPruner(model);
    expect(pruner.analysis.groups.map((g) => [g.name, g.units, g.layers, g.frozenReasons.length])).toEqual([
      ['conv_a', 8, ['conv_a', 'conv_dw'], 0],
      ['gemm', 6, ['gemm'], 0],
      ['matmul', 5, ['matmul'], 0],
      ['out', 3, ['out'], 1],
    ]);
    await expectEquivalent(model, pruner, { perLayer: { conv_a: 0.5, gemm: 0.5, matmul: 0.4 } });
  });

  it('should join a residual chain through Sub and a gating Mul into one group, and flatten it through a Reshape to [0, -1]', async () => {
    const nodes = [
      makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
      makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
      makeNode('Conv', ['x', 'wb'], ['b'], { kernel_shape: [1, 1] }, 'conv_b'),
      makeNode('Sub', ['a_relu', 'b'], ['difference'], {}, 'residual'),
      makeNode('Conv', ['x', 'wc'], ['c'], { kernel_shape: [1, 1] }, 'conv_c'),
      makeNode('Sigmoid', ['c'], ['gate'], {}, 'sigmoid'),
      makeNode('Mul', ['difference', 'gate'], ['gated'], {}, 'gating'),
      makeNode('Reshape', ['gated', 'flat_shape'], ['flat'], {}, 'flatten'),
      makeNode('Gemm', ['flat', 'wf'], ['y'], {}, 'fc'),
    ];
    const initializers = [weight('wa', [8, 3, 3, 3], 51), weight('wb', [8, 3, 1, 1], 52), weight('wc', [8, 3, 1, 1], 53), weight('wf', [128, 5], 54), int64('flat_shape', [0, -1])];
    const model = handBuiltModel(nodes, initializers, [input('x', 3)], [output('y')]);
    const pruner = new StructuredPruner(model);
    expect(pruner.analysis.groups.map((g) => [g.name, g.layers, g.frozenReasons.length])).toEqual([
      ['conv_a', ['conv_a', 'conv_b', 'conv_c'], 0],
      ['fc', ['fc'], 1],
    ]);
    await expectEquivalent(model, pruner, { perLayer: { conv_a: 0.5 } });
  });

  it('should pass channels through Slice and Split on other axes and through a Slice that keeps every channel', async () => {
    const nodes = [
      makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
      makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
      makeNode('Slice', ['a_relu', 'rows_start', 'rows_end', 'rows_axis'], ['rows'], {}, 'slice_rows'),
      makeNode('Slice', ['rows', 'all_start', 'all_end', 'channel_axis'], ['rows_all'], {}, 'slice_all_channels'),
      makeNode('Split', ['rows_all', 'halves'], ['top', 'bottom'], { axis: 2 }, 'split_rows'),
      makeNode('Add', ['top', 'bottom'], ['sum'], {}, 'join'),
      makeNode('Conv', ['sum', 'wb'], ['y'], { kernel_shape: [1, 1] }, 'conv_b'),
    ];
    const initializers = [
      weight('wa', [8, 3, 3, 3], 21),
      weight('wb', [4, 8, 1, 1], 22),
      int64('rows_start', [0]),
      int64('rows_end', [2]),
      int64('rows_axis', [3]),
      int64('all_start', [0]),
      arrayToTensor('all_end', BigInt64Array.from([9223372036854775807n]), [1], DataType.INT64),
      int64('channel_axis', [1]),
      int64('halves', [2, 2]),
    ];
    const model = handBuiltModel(nodes, initializers, [input('x', 3)], [output('y')]);
    const pruner = new StructuredPruner(model);
    expect(pruner.analysis.groups.find((g) => g.name === 'conv_a')?.frozenReasons).toEqual([]);
    await expectEquivalent(model, pruner, { perLayer: { conv_a: 0.5 } });
  });

  it('should freeze Split and Slice that take part of the channels, with the reason', () => {
    const model = (op: 'Split' | 'Slice'): OnnxModel =>
      handBuiltModel(
        [
          makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [1, 1] }, 'conv_a'),
          op === 'Split'
            ? makeNode('Split', ['a', 'halves'], ['first', 'second'], { axis: 1 }, 'split')
            : makeNode('Slice', ['a', 'start', 'end', 'channel_axis'], ['first'], {}, 'slice'),
          makeNode('Conv', ['first', 'wb'], ['y'], { kernel_shape: [1, 1] }, 'conv_b'),
        ],
        [weight('wa', [8, 3, 1, 1], 31), weight('wb', [2, 4, 1, 1], 32), int64('halves', [4, 4]), int64('start', [0]), int64('end', [4]), int64('channel_axis', [1])],
        [input('x', 3)],
        [output('y')],
      );
    for (const op of ['Split', 'Slice'] as const) {
      const group = analyzeDependencies(model(op).proto).groups.find((g) => g.name === 'conv_a');
      expect(group?.frozenReasons, op).toEqual([expect.stringMatching(/it takes part of the channels; how many of them survive pruning depends on which channels are kept/)]);
    }
  });

  it('should freeze a group concatenated by channel that a later Reshape splits into heads', () => {
    const nodes = [
      makeNode('Conv', ['x', 'wa'], ['a'], { kernel_shape: [1, 1] }, 'conv_a'),
      makeNode('Conv', ['x', 'wb'], ['b'], { kernel_shape: [1, 1] }, 'conv_b'),
      makeNode('Concat', ['a', 'b'], ['ab'], { axis: 1 }, 'concat'),
      makeNode('Conv', ['ab', 'wc'], ['y'], { kernel_shape: [1, 1] }, 'conv_c'),
      makeNode('Reshape', ['a', 'heads_shape'], ['heads'], {}, 'split_heads'),
      makeNode('ReduceMean', ['heads'], ['per_head'], { axes: [2, 3], keepdims: 0 }, 'mean'),
      makeNode('Gemm', ['per_head', 'wf'], ['z'], { transB: 1 }, 'fc'),
    ];
    const initializers = [weight('wa', [8, 3, 1, 1], 41), weight('wb', [6, 3, 1, 1], 42), weight('wc', [4, 14, 1, 1], 43), weight('wf', [3, 2], 44), int64('heads_shape', [0, 2, 4, 16])];
    const model = handBuiltModel(nodes, initializers, [input('x', 3)], [output('y'), output('z')]);
    const group = analyzeDependencies(model.proto).groups.find((g) => g.name === 'conv_a');
    expect(group).toMatchObject({ kind: 'heads', units: 2, unitSize: 4 });
    expect(group?.frozenReasons.join()).toMatch(/"concat" \(Concat\) concatenates these channels.*a concatenated group is pruned in blocks of channels elsewhere/);
  });
});
