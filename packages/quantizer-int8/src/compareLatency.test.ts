import { OnnxModel } from '@open-autoglm/onnx';
import { describe, expect, it } from 'vitest';
import { compareLatency } from './compareLatency.js';
import { fixture } from './test-support/fixtures.js';

describe('compareLatency', () => {
  it('should find lenet5 faster than resnet8 on the same input (about 10x fewer MACs)', async () => {
    const resnet8 = (await OnnxModel.load(fixture('resnet8-fmnist.onnx'))).toBytes();
    const lenet5 = (await OnnxModel.load(fixture('lenet5-fmnist.onnx'))).toBytes();
    const result = await compareLatency(resnet8, lenet5, { rounds: 3, roundMs: 20 });
    expect(result.aMs).toBeGreaterThan(0);
    expect(result.speedup).toBeCloseTo(result.aMs / result.bMs, 12);
    expect(result.speedup).toBeGreaterThan(1.5);
  });
});
