import { describe, expect, it } from 'vitest';
import { countModelStats, type NodeStats } from './countModelStats.js';
import { DataType } from './proto.js';
import { arrayToTensor } from './tensor.js';
import { buildModel, FIXTURE_MODELS, fixtureManifest, loadFixture } from './test-support/testModels.js';

const f32 = (name: string, dims: number[]) =>
  arrayToTensor(name, new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);

/** The manifest's split: MatMul with a weight is a linear layer, MatMul of two activations attention. */
function macsByKind(perNode: readonly NodeStats[], weightMatMuls: ReadonlySet<string>) {
  const split = { conv: 0, linear: 0, attention_matmul: 0 };
  for (const n of perNode) {
    const macs = n.macs ?? NaN;
    if (n.opType === 'Conv') split.conv += macs;
    else if (n.opType === 'Gemm' || (n.opType === 'MatMul' && weightMatMuls.has(n.node))) split.linear += macs;
    else if (n.opType === 'MatMul') split.attention_matmul += macs;
  }
  return split;
}

describe('countModelStats', () => {
  for (const name of FIXTURE_MODELS) {
    it(`should count the params and MACs of ${name} exactly as the manifest does`, () => {
      const model = loadFixture(name);
      const expected = fixtureManifest(name);
      const stats = countModelStats(model);
      expect(stats.params).toBe(expected.params);
      expect(stats.macs).toBe(expected.macs_per_sample.total);
      expect(stats.uncounted).toEqual([]);
      const initializers = new Set(model.graph?.initializer.map((t) => t.name));
      const weightMatMuls = new Set(
        (model.graph?.node ?? []).filter((n) => n.opType === 'MatMul' && n.input.some((i) => initializers.has(i))).map((n) => n.name),
      );
      const { conv, linear, attention_matmul } = expected.macs_per_sample;
      expect(macsByKind(stats.perNode, weightMatMuls)).toEqual({ conv, linear, attention_matmul });
      expect(stats.perNode.reduce((sum, n) => sum + n.params, 0)).toBe(stats.params);
    });
  }

  it('should keep MACs per sample and report per-node shapes at the bound batch', () => {
    const one = countModelStats(loadFixture('tinybert-spam'));
    const three = countModelStats(loadFixture('tinybert-spam'), { batch: 3 });
    expect(three.macs).toBe(one.macs);
    expect(three.params).toBe(one.params);
    const qk = three.perNode.find((n) => n.node === '/layers.0/attn/MatMul');
    // QK^T: 2 heads x 128 x 128 outputs, each a 32-long dot product.
    expect(qk).toMatchObject({ opType: 'MatMul', params: 0, macs: 2 * 128 * 128 * 32, outputShape: [3, 2, 128, 128] });
  });

  it('should count an Identity copy of a parameter again and skip BatchNorm statistics', () => {
    const stats = countModelStats(loadFixture('resnet8-fmnist'));
    const shortcutBn = stats.perNode.find((n) => n.node === '/layer2/shortcut/shortcut.1/BatchNormalization');
    // scale 32 + bias 32 (read through Identity from layer2.bn2.bias); running mean/var not counted.
    expect(shortcutBn?.params).toBe(64);
    expect(stats.perNode.find((n) => n.opType === 'Identity')?.params).toBe(0);
  });

  it('should count ConvTranspose, grouped Conv, PReLU, quantized weights and skip configuration inputs', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['n', 4, 5, 5] }],
      initializers: [
        f32('dw', [4, 1, 3, 3]),
        f32('slope', [1]),
        f32('up', [4, 4, 2, 2]),
        arrayToTensor('scales', new Float32Array([1, 1, 1, 1]), [4]),
        arrayToTensor('q', new Int8Array(8 * 4), [8, 4]),
        f32('qs', []),
        f32('bias', [8]),
        f32('one', [1]),
      ],
      nodes: [
        // depthwise: 4 x 5 x 5 outputs x (1 x 3 x 3)
        { op: 'Conv', inputs: ['x', 'dw'], outputs: ['c'], attributes: { group: 4, pads: [1, 1, 1, 1] } },
        { op: 'PRelu', inputs: ['c', 'slope'], outputs: ['p'] },
        // each of 4 x 5 x 5 inputs spreads over 4 x 2 x 2 outputs
        { op: 'ConvTranspose', inputs: ['p', 'up'], outputs: ['t'], attributes: { strides: [2, 2] } },
        { op: 'Resize', inputs: ['t', '', 'scales'], outputs: ['r'] },
        { op: 'Mul', inputs: ['r', 'one'], outputs: ['m'] },
        { op: 'ReduceMean', inputs: ['m'], outputs: ['g'], attributes: { axes: [2, 3], keepdims: 0 } },
        { op: 'DequantizeLinear', inputs: ['q', 'qs'], outputs: ['w'] },
        { op: 'MatMul', inputs: ['w', 'g2'], outputs: ['y0'] },
        { op: 'Transpose', inputs: ['g'], outputs: ['g2'] },
        { op: 'Add', inputs: ['y0', 'bias2'], outputs: ['y'] },
        { op: 'Unsqueeze', inputs: ['bias', 'axes'], outputs: ['bias2'] },
      ],
      outputs: ['y'],
    });
    model.graph?.initializer.push(arrayToTensor('axes', new BigInt64Array([1n]), [1]));
    const stats = countModelStats(model, { batch: 2 });
    const byOp = Object.fromEntries(stats.perNode.map((n) => [n.opType, n]));
    expect(byOp['Conv']).toMatchObject({ params: 36, macs: 4 * 25 * 9 });
    expect(byOp['PRelu']).toMatchObject({ params: 1, macs: 0 });
    expect(byOp['ConvTranspose']).toMatchObject({ params: 64, macs: 4 * 25 * 16, outputShape: [2, 4, 10, 10] });
    expect(byOp['Resize']?.params).toBe(0);
    expect(byOp['Mul']?.params).toBe(0);
    expect(byOp['DequantizeLinear']?.params).toBe(32);
    expect(byOp['Unsqueeze']?.params).toBe(8);
    // [8, 4] x [4, n=2]: batch lands in the last axis here, 8 x 2 outputs x 4 / batch 2
    expect(byOp['MatMul']?.macs).toBe((8 * 2 * 4) / 2);
    expect(stats.params).toBe(36 + 1 + 64 + 32 + 8);
  });

  it('should list nodes whose MACs depend on an unbound symbol', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['n', 'seq', 8] }],
      initializers: [f32('w', [8, 4])],
      nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'proj' }],
      outputs: ['y'],
    });
    const unbound = countModelStats(model);
    expect(unbound.uncounted).toEqual(['proj']);
    expect(unbound.macs).toBe(0);
    expect(countModelStats(model, { dims: { seq: 10 } })).toMatchObject({ macs: 10 * 4 * 8, uncounted: [], params: 32 });
  });
});
