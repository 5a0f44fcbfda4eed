import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel } from '@open-autoglm/onnx';
import { createSession, loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { quantizeDynamic } from './quantizeDynamic.js';
import { fixture, optimizedOpCounts } from './test-support/fixtures.js';

/** y = x @ W + b as a Gemm with transB (W stored [N, K]), opset 17. */
function gemmModel(weight: Float32Array, bias: Float32Array, k: number, n: number): OnnxModel {
  return new OnnxModel(
    makeModel({
      name: 'gemm',
      node: [makeNode('Gemm', ['x', 'w', 'b'], ['y'], { transB: 1 }, 'fc')],
      initializer: [arrayToTensor('w', weight, [n, k]), arrayToTensor('b', bias, [n])],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', k])],
      output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', n])],
    }),
  );
}

describe('quantizeDynamic', () => {
  it('should keep tinybert within 1 point on spam-val with every weight MatMul fused into an integer kernel', async () => {
    const model = await OnnxModel.load(fixture('tinybert-spam.onnx'));
    const validation = await loadDataset({ x: fixture('spam-val.x.npy'), y: fixture('spam-val.y.npy') });
    const result = quantizeDynamic(model);
    expect(result.quantizedNodes).toHaveLength(14);
    expect(result.floatNodes.every((n) => /attention scores/.test(n.reason))).toBe(true);
    const counts = await optimizedOpCounts(result.model);
    expect((counts.DynamicQuantizeMatMul ?? 0) + (counts.MatMulIntegerToFloat ?? 0)).toBe(14);
    expect(counts.MatMulInteger).toBeUndefined();
    const drop = (await modelAccuracy(model, validation)) - (await modelAccuracy(result.model, validation));
    expect(drop).toBeLessThanOrEqual(0.01);
  });

  it('should match x @ W^T + b within the quantization error bound', async () => {
    const k = 16;
    const n = 4;
    const weight = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7) * (1 + (i % n)));
    const bias = Float32Array.from({ length: n }, (_, i) => i - 1.5);
    const x = Float32Array.from({ length: 2 * k }, (_, i) => Math.cos(i * 0.9) * 3);
    const result = quantizeDynamic(gemmModel(weight, bias, k, n));
    const session = await createSession(result.model.toBytes(), { device: 'cpu', threads: 1 });
    const y = (await session.run({ x: new Tensor('float32', x, [2, k]) })).y?.data as Float32Array;
    await session.release();
    // |error| <= sum_k (|x| * s_w / 2 + |w| * s_x / 2 + s_x * s_w / 4) per output, in float64.
    let xMin = 0;
    let xMax = 0;
    for (const v of x) [xMin, xMax] = [Math.min(xMin, v), Math.max(xMax, v)];
    const sx = (xMax - xMin) / 255;
    for (let row = 0; row < 2; row++) {
      for (let j = 0; j < n; j++) {
        let exact = bias[j] as number;
        let sw = 0;
        for (let i = 0; i < k; i++) sw = Math.max(sw, Math.abs(weight[j * k + i] as number) / 127);
        let bound = 0;
        for (let i = 0; i < k; i++) {
          const xi = x[row * k + i] as number;
          const wi = weight[j * k + i] as number;
          exact += xi * wi;
          bound += (Math.abs(xi) * sw) / 2 + (Math.abs(wi) * sx) / 2 + (sx * sw) / 4;
        }
        expect(Math.abs((y[row * n + j] as number) - exact)).toBeLessThanOrEqual(bound + 1e-5);
      }
    }
  });
});
