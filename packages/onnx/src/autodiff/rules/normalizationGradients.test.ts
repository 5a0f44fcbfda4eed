import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DataType } from '../../proto.js';
import { arrayToTensor } from '../../tensor.js';
import { buildModel, randomArray } from '../../test-support/testModels.js';
import { buildTrainingStep } from '../buildTrainingStep.js';
import { checkGradients, type GradientCheckInput } from '../test-support/checkGradients.js';
import { StepRunner } from '../test-support/StepRunner.js';

/** BatchNormalization inputs: x, scale and bias are checked; the running statistics are not trainable. */
function batchNormInputs(dims: number[]): GradientCheckInput[] {
  const channels = dims[1] as number;
  return [
    { name: 'x', dims },
    { name: 'gamma', dims: [channels] },
    { name: 'beta', dims: [channels] },
    { name: 'mean', dims: [channels], differentiable: false },
    { name: 'var', dims: [channels], data: Float32Array.from(randomArray(channels, 11), (v) => 0.5 + v * v), differentiable: false },
  ];
}

describe('normalizationGradients', () => {
  it('should give the gradients of BatchNormalization with frozen running statistics', async () => {
    for (const dims of [[3, 4, 3, 2], [5, 3]]) {
      const result = await checkGradients({
        nodes: [{ op: 'BatchNormalization', inputs: ['x', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'], attributes: { epsilon: 1e-3 }, floatAttributes: ['epsilon'] }],
        inputs: batchNormInputs(dims),
        outputs: ['y'],
        mode: 'eval',
      });
      expect(result.maxRelativeError, JSON.stringify(dims)).toBeLessThan(1e-3);
    }
  });

  it('should give the gradients of BatchNormalization with batch statistics in train mode', async () => {
    for (const dims of [[3, 4, 3, 2], [6, 3], [2, 2, 5]]) {
      const result = await checkGradients({
        nodes: [{ op: 'BatchNormalization', inputs: ['x', 'gamma', 'beta', 'mean', 'var'], outputs: ['y', 'running_mean', 'running_var'], attributes: { training_mode: 1 } }],
        inputs: batchNormInputs(dims),
        outputs: ['y'],
        mode: 'train',
      });
      expect(result.maxRelativeError, JSON.stringify(dims)).toBeLessThan(1e-3);
    }
  });

  it('should update the running statistics with momentum and the unbiased batch variance', async () => {
    const dims = [4, 2, 3, 3];
    const x = randomArray(72, 5);
    const runningMean = Float32Array.of(0.25, -0.5);
    const runningVariance = Float32Array.of(1.5, 0.75);
    const model = buildModel({
      inputs: [],
      outputs: ['y'],
      nodes: [{ op: 'BatchNormalization', inputs: ['x', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'], attributes: { momentum: 0.8 }, floatAttributes: ['momentum'] }],
      initializers: [
        arrayToTensor('x', x, dims),
        arrayToTensor('gamma', Float32Array.of(1, 2), [2]),
        arrayToTensor('beta', Float32Array.of(0, 1), [2]),
        arrayToTensor('mean', runningMean, [2]),
        arrayToTensor('var', runningVariance, [2]),
      ],
    });
    const { model: step, signature } = buildTrainingStep(model, {
      trainable: ['gamma', 'beta'],
      mode: 'train',
      loss: [{ kind: 'mse', pairs: [{ student: 'y' }] }],
      optimizer: { kind: 'sgd' },
    });
    expect(signature.buffers.map((b) => b.name).sort()).toEqual(['mean', 'var']);
    const runner = await StepRunner.create(step, signature, model);
    const teacher = signature.teacherFeatures[0];
    if (teacher === undefined) throw new Error('the mse term has no teacher input');
    const outputs = await runner.step({ [teacher.name]: new ort.Tensor('float32', new Float32Array(72), dims) }, 0);
    await runner.release();
    for (let channel = 0; channel < 2; channel++) {
      const values: number[] = [];
      for (let n = 0; n < 4; n++) for (let p = 0; p < 9; p++) values.push(x[(n * 2 + channel) * 9 + p] as number);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const unbiased = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1);
      const updatedMean = (outputs[signature.buffers.find((b) => b.name === 'mean')?.updated ?? '']?.data as Float32Array)[channel] as number;
      const updatedVariance = (outputs[signature.buffers.find((b) => b.name === 'var')?.updated ?? '']?.data as Float32Array)[channel] as number;
      expect(updatedMean).toBeCloseTo(0.8 * (runningMean[channel] as number) + 0.2 * mean, 6);
      expect(updatedVariance).toBeCloseTo(0.8 * (runningVariance[channel] as number) + 0.2 * unbiased, 6);
    }
  });

  it('should leave the running statistics alone in eval mode', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', 2] }],
      outputs: ['y'],
      nodes: [{ op: 'BatchNormalization', inputs: ['x', 'gamma', 'beta', 'mean', 'var'], outputs: ['y'] }],
      initializers: ['gamma', 'beta', 'mean', 'var'].map((name) => arrayToTensor(name, Float32Array.of(1, 1), [2])),
    });
    const { signature } = buildTrainingStep(model, { mode: 'eval', loss: [{ kind: 'mse', pairs: [{ student: 'y' }] }], optimizer: { kind: 'sgd' } });
    expect(signature.buffers).toEqual([]);
    expect(signature.parameters.map((p) => p.name).sort()).toEqual(['beta', 'gamma']);
  });

  it('should give the gradients of LayerNormalization over the last axis and over several axes', async () => {
    const cases: { dims: number[]; axis: number; scaleDims: number[] }[] = [
      { dims: [3, 5], axis: -1, scaleDims: [5] },
      { dims: [2, 3, 4], axis: 1, scaleDims: [3, 4] },
      { dims: [2, 3, 4], axis: -1, scaleDims: [4] },
      { dims: [2, 3, 4], axis: 1, scaleDims: [4] },
    ];
    for (const { dims, axis, scaleDims } of cases) {
      const result = await checkGradients({
        nodes: [{ op: 'LayerNormalization', inputs: ['x', 'scale', 'bias'], outputs: ['y'], attributes: { axis } }],
        inputs: [
          { name: 'x', dims },
          { name: 'scale', dims: scaleDims },
          { name: 'bias', dims: scaleDims },
        ],
        outputs: ['y'],
      });
      expect(result.maxRelativeError, JSON.stringify({ dims, axis, scaleDims })).toBeLessThan(1e-3);
    }
  });

  it('should give the gradients of LayerNormalization without bias whose Mean output the model reads', async () => {
    const result = await checkGradients({
      nodes: [
        { op: 'LayerNormalization', inputs: ['x', 'scale'], outputs: ['y', 'mu'], attributes: { axis: -1, epsilon: 1e-2 }, floatAttributes: ['epsilon'] },
        { op: 'Add', inputs: ['y', 'mu'], outputs: ['z'] },
      ],
      inputs: [
        { name: 'x', dims: [4, 6] },
        { name: 'scale', dims: [6] },
      ],
      outputs: ['z'],
    });
    expect(result.maxRelativeError).toBeLessThan(1e-3);
  });
});
