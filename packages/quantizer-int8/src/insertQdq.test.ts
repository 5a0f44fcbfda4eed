import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, type NodeProto, OnnxModel } from '@open-autoglm/onnx';
import { createSession, Dataset, type OptimizationLevel } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { planStaticQuantization } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import { quantizeStatic } from './quantizeStatic.js';
import { fixture } from './test-support/fixtures.js';
import { gemmChain } from './test-support/gemmChain.js';

const K = 4;
const N = 3;
const W = Float32Array.from([0.5, -1.2, 0.3, 0.9, -0.4, 0.1, 1.5, -0.7, 0.2, 0.25, -0.05, 0.6]);
const B = Float32Array.from([0.1, -0.2, 0.05]);
const X = Float32Array.from([0.2, -0.5, 1.0, 0.3, -0.9, 0.4, 0.1, 0.8]);

/** x [2, 4] -> Gemm (W [3, 4] transposed, bias) -> Relu -> Flatten -> identity Gemm -> y. */
function gemmReluModel(): OnnxModel {
  return new OnnxModel(
    makeModel({
      name: 'gemm-relu',
      node: [
        makeNode('Gemm', ['x', 'w', 'b'], ['t'], { transB: 1 }, 'fc'),
        makeNode('Relu', ['t'], ['r'], {}, 'relu'),
        makeNode('Flatten', ['r'], ['f'], {}, 'flatten'),
        makeNode('Gemm', ['f', 'w2', 'b2'], ['y'], { transB: 1 }, 'head'),
      ],
      initializer: [
        arrayToTensor('w', W, [N, K]),
        arrayToTensor('b', B, [N]),
        arrayToTensor('w2', Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), [N, N]),
        arrayToTensor('b2', new Float32Array(N), [N]),
      ],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', K])],
      output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', N])],
    }),
  );
}

const roundEven = (v: number): number => {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
};

describe('planStaticQuantization', () => {
  it('should quantize the input and the Relu output (folded), share parameters through Flatten, and keep the graph output float', () => {
    const plan = planStaticQuantization(prepareForQuantization(gemmReluModel()));
    expect(plan.tensors).toEqual(['x', 'r', 'f']);
    expect([...plan.foldedRelus.keys()]).toEqual(['r']);
    expect(plan.sharedParameters.get('f')).toBe('r');
    expect(plan.weights.map((w) => [w.node.name, w.axis, w.biasSlot])).toEqual([['fc', 0, 2], ['head', 0, 2]]);
  });
});

describe('planStaticQuantization of a one-input-channel Conv', () => {
  it('should keep it float by default unless a pooling op reads it, and quantize it when told', async () => {
    const resnet8 = prepareForQuantization(await OnnxModel.load(fixture('resnet8-fmnist.onnx')));
    const conv1 = resnet8.graph.nodes.find((n) => n.name === '/conv1/Conv') as NodeProto;
    const byDefault = planStaticQuantization(resnet8);
    expect(byDefault.floatNodes.map((n) => [n.node, n.reason])).toEqual([['/conv1/Conv', expect.stringMatching(/one input channel/)]]);
    expect(byDefault.nodes.has(conv1)).toBe(false);
    expect(planStaticQuantization(resnet8, { floatSingleChannelConv: false }).nodes.has(conv1)).toBe(true);
    // vgg11bn's first Conv feeds a MaxPool (after its Relu): it stays INT8.
    const vgg = prepareForQuantization(await OnnxModel.load(fixture('vgg11bn-mnist.onnx')));
    expect(planStaticQuantization(vgg).floatNodes).toEqual([]);
  });
});

describe('insertQdq', () => {
  it('should compute what a float64 simulation of the same quantization computes', async () => {
    const calibration = new Dataset(new Map([['x', { dtype: 'float32' as const, shape: [2, K], data: X, file: undefined }]]), undefined);
    const result = await quantizeStatic(gemmReluModel(), calibration);
    // Independent reference: uint8 input, per-row int8 weights, int32 bias, Q at [0, max relu].
    const [xMin, xMax] = [Math.min(0, ...X), Math.max(0, ...X)];
    const sx = Math.fround((xMax - xMin) / 255);
    const zx = Math.round(-xMin / sx);
    const xd = Array.from(X, (v) => (Math.min(255, Math.max(0, roundEven(v / sx) + zx)) - zx) * sx);
    const t: number[] = [];
    for (let row = 0; row < 2; row++) {
      for (let n = 0; n < N; n++) {
        const rowWeights = Array.from(W.subarray(n * K, n * K + K));
        const sw = Math.fround(Math.max(...rowWeights.map(Math.abs)) / 127);
        const sb = Math.fround(sx * sw);
        let acc = roundEven((B[n] as number) / sb) * sb;
        for (let k = 0; k < K; k++) acc += (xd[row * K + k] as number) * (roundEven((rowWeights[k] as number) / sw) * sw);
        t.push(acc);
      }
    }
    // Calibration observes the float model: the Relu output's range comes from x @ W^T + b.
    let tMax = 0;
    for (let row = 0; row < 2; row++) {
      for (let n = 0; n < N; n++) {
        let acc = B[n] as number;
        for (let k = 0; k < K; k++) acc += (X[row * K + k] as number) * (W[n * K + k] as number);
        tMax = Math.max(tMax, Math.fround(acc));
      }
    }
    const st = Math.fround(tMax / 255);
    const expected = t.map((v) => Math.min(255, Math.max(0, roundEven(v / st))) * st);
    for (const level of ['disabled', 'all'] as OptimizationLevel[]) {
      const session = await createSession(result.model.toBytes(), { device: 'cpu', threads: 1, optimizationLevel: level });
      const y = (await session.run({ x: new Tensor('float32', X, [2, K]) })).y?.data as Float32Array;
      await session.release();
      // The identity head re-quantizes its weights exactly (1 -> 127 * (1/127)); integer kernels
      // may round the requantization one step differently.
      expected.forEach((v, i) => expect(Math.abs((y[i] as number) - v), `${level} #${i}`).toBeLessThanOrEqual(level === 'all' ? st * 1.01 : 1e-5));
    }
  });
});

async function runAt(model: OnnxModel, level: OptimizationLevel, x: Float32Array, k: number): Promise<Float32Array> {
  const session = await createSession(model.toBytes(), { device: 'cpu', threads: 1, optimizationLevel: level });
  try {
    return (await session.run({ x: new Tensor('float32', x, [x.length / k, k]) })).y?.data as Float32Array;
  } finally {
    await session.release();
  }
}

const datasetOf = (x: Float32Array, k: number): Dataset =>
  new Dataset(new Map([['x', { dtype: 'float32' as const, shape: [x.length / k, k], data: x, file: undefined }]]), undefined);

describe('insertQdq weights', () => {
  it('should scale a Gemm weight without transB per output column (axis 1), as the fused kernel reads it', async () => {
    // Columns of very different magnitudes: a scale applied along the wrong axis shows at once.
    const weight = Float32Array.from([1, 100, 0.01, -0.5, -60, 0.02, 0.25, 30, -0.015, -1, 90, 0.005]); // [K=4, N=3]
    const model = gemmChain(4, [{ weight, dims: [4, 3], bias: Float32Array.of(0.1, -2, 0.001), transB: 0 }]);
    const x = Float32Array.from([0.2, -0.5, 1.0, 0.3, -0.9, 0.4, 0.1, 0.8]);
    const result = await quantizeStatic(model, datasetOf(x, 4));
    expect(result.weights[0]?.axis).toBe(1);
    expect(result.weights[0]?.scales.map((s) => s * 127)).toEqual([1, 100, 0.02].map((m) => expect.closeTo(m, 5)));
    const reference = await runAt(model, 'disabled', x, 4);
    for (const level of ['disabled', 'all'] as OptimizationLevel[]) {
      const y = await runAt(result.model, level, x, 4);
      // Per column, within 1 % of the column's magnitude (x is quantized to 1/255 of its range).
      y.forEach((v, i) => expect(Math.abs(v - (reference[i] as number)), `${level} #${i}`).toBeLessThan([1.5, 150, 0.03][i % 3]! * 0.01));
    }
  });

  it('should store a weight read by two nodes (tied) once, as one int8 initializer both read', async () => {
    const weight = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
    const model = gemmChain(4, [
      { weight, dims: [4, 4], bias: Float32Array.of(0.1, 0.2, 0.3, 0.4), transB: 1 },
      { tiedTo: 0, bias: Float32Array.of(-0.1, 0, 0.1, 0.2), transB: 1 },
    ]);
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.cos(i));
    const result = await quantizeStatic(model, datasetOf(x, 4));
    // int8 initializers of the weight's shape (the zero points are int8 as well).
    const int8 = result.model.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.dims.length === 2);
    expect(int8).toHaveLength(1);
    const readers = result.model.graph.consumersOf(int8[0]!.name);
    expect(readers.map((n) => n.opType)).toEqual(['DequantizeLinear', 'DequantizeLinear']);
    const reference = await runAt(model, 'disabled', x, 4);
    const y = await runAt(result.model, 'all', x, 4);
    y.forEach((v, i) => expect(Math.abs(v - (reference[i] as number)), `#${i}`).toBeLessThan(0.05));
  });

  it('should widen a tiny weight scale until its bias fits int32 at scale s_input * s_weight', async () => {
    // max|w| = 1e-7 gives s_w ~ 8e-10; with s_x = 1/255 the bias 10 would need 3e12 > 2^31 steps.
    const weight = Float32Array.from([1e-7, -1e-7, 5e-8, 2e-8, 1e-7, 0, -3e-8, 1e-7, 4e-8]);
    const model = gemmChain(3, [{ weight, dims: [3, 3], bias: Float32Array.of(10, -10, 3), transB: 1 }]);
    const x = Float32Array.from([0, 0.5, 1, 1, 0.25, 0]);
    const result = await quantizeStatic(model, datasetOf(x, 3));
    const reference = await runAt(model, 'disabled', x, 3);
    for (const level of ['disabled', 'all'] as OptimizationLevel[]) {
      const y = await runAt(result.model, level, x, 3);
      y.forEach((v, i) => expect(Math.abs(v - (reference[i] as number)), `${level} #${i}`).toBeLessThan(1e-5));
    }
    const inputScale = result.activations.find((a) => a.tensor === 'x')?.scale as number;
    const scales = result.weights[0]?.scales as readonly number[];
    [10, 10, 3].forEach((b, c) => expect(b / Math.fround((scales[c] as number) * inputScale)).toBeLessThanOrEqual(2 ** 31 - 1));
  });
});
