import { create } from '@bufbuild/protobuf';
import { arrayToTensor, DataType, makeNode, makeTensorValueInfo, ModelProtoSchema, OnnxModel } from '@open-autoglm/onnx';
import { createSession, Dataset, type OptimizationLevel } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { planStaticQuantization } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import { quantizeStatic } from './quantizeStatic.js';

const K = 4;
const N = 3;
const W = Float32Array.from([0.5, -1.2, 0.3, 0.9, -0.4, 0.1, 1.5, -0.7, 0.2, 0.25, -0.05, 0.6]);
const B = Float32Array.from([0.1, -0.2, 0.05]);
const X = Float32Array.from([0.2, -0.5, 1.0, 0.3, -0.9, 0.4, 0.1, 0.8]);

/** x [2, 4] -> Gemm (W [3, 4] transposed, bias) -> Relu -> Flatten -> identity Gemm -> y. */
function gemmReluModel(): OnnxModel {
  return new OnnxModel(
    create(ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: [{ domain: '', version: 17n }],
      graph: {
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
      },
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
