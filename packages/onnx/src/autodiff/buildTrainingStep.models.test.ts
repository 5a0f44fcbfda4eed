import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DataType } from '../proto.js';
import { arrayToTensor } from '../tensor.js';
import { buildModel, randomArray } from '../test-support/testModels.js';
import { buildTrainingStep } from './buildTrainingStep.js';
import { checkModelGradients } from './test-support/checkModelGradients.js';

/** Relative error allowed between the analytic gradient and float32 finite differences of the loss. */
const TOLERANCE = 1e-3;

describe('buildTrainingStep on whole models', () => {
  it('should give the gradients of a small two-layer perceptron with a residual Add and Tanh', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', 6] }],
      outputs: ['logits'],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attributes: { transB: 1 } },
        { op: 'Tanh', inputs: ['h'], outputs: ['a'] },
        { op: 'Add', inputs: ['a', 'x'], outputs: ['r'] },
        { op: 'MatMul', inputs: ['r', 'w2'], outputs: ['m'] },
        { op: 'Add', inputs: ['m', 'b2'], outputs: ['logits'] },
      ],
      initializers: [
        arrayToTensor('w1', randomArray(36, 1), [6, 6]),
        arrayToTensor('b1', randomArray(6, 2), [6]),
        arrayToTensor('w2', randomArray(24, 3), [6, 4]),
        arrayToTensor('b2', randomArray(4, 4), [4]),
      ],
    });
    const { model: step, signature } = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, exposeGradients: true });
    const batch = {
      x: new ort.Tensor('float32', randomArray(24, 5).map((v) => v * 2), [4, 6]),
      labels: new ort.Tensor('int64', BigInt64Array.of(0n, 3n, 1n, 2n), [4]),
    };
    const checks = await checkModelGradients(step, signature, model, batch);
    expect(checks.map((c) => c.parameter)).toEqual(['w1', 'b1', 'w2', 'b2']);
    for (const check of checks) expect(check.relativeError, check.parameter).toBeLessThan(TOLERANCE);
  });
});
