import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../OnnxModel.js';
import { DataType } from '../proto.js';
import { arrayToTensor } from '../tensor.js';
import { buildModel, type FixtureModel, fixtureManifest, loadFixture, randomArray, readNpyRows } from '../test-support/testModels.js';
import { buildTrainingStep } from './buildTrainingStep.js';
import { checkModelGradients } from './test-support/checkModelGradients.js';
import { crossEntropyFloat64 } from './test-support/evaluateFloat64.js';
import { StepRunner, scalarOf } from './test-support/StepRunner.js';
import type { TrainingMode } from './GradientRule.js';

/**
 * A batch of a fixture's evaluation split with labels shifted by one class, so the trained
 * model is confidently wrong and the gradients are large next to float32 rounding.
 */
function fixtureBatch(name: FixtureModel, count: number, inputName: string): Record<string, ort.Tensor> {
  const split = fixtureManifest(name).splits.eval;
  const { dims, data } = readNpyRows(`${split}.x.npy`, count);
  const labels = readNpyRows(`${split}.y.npy`, count).data as BigInt64Array;
  const classes = name === 'tinybert-spam' ? 2n : 10n;
  return {
    [inputName]: new ort.Tensor(data instanceof Float32Array ? 'float32' : 'int64', data, dims),
    labels: new ort.Tensor('int64', labels.map((y) => (y + 1n) % classes), [count]),
  };
}

/** `count` items spread evenly over `items`, first and last included (all of them when there are fewer). */
function evenlySpread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.round((i * (items.length - 1)) / (count - 1))] as T);
}

/** Builds the step of a fixture model and checks its gradients and that SGD lowers the loss. */
async function checkFixture(name: FixtureModel, mode: TrainingMode, { batch = 8, elements = 3, sample = Infinity } = {}): Promise<void> {
  const inputName = name === 'tinybert-spam' ? 'input_ids' : 'input';
  const source = new OnnxModel(loadFixture(name));
  const { model: step, signature } = buildTrainingStep(source, {
    loss: [{ kind: 'crossEntropy' }],
    optimizer: { kind: 'sgd', momentum: 0.9 },
    mode,
    exposeGradients: true,
  });
  expect(step.problems()).toEqual([]);
  const batch8 = fixtureBatch(name, batch, inputName);
  const input = batch8[inputName] as ort.Tensor;
  const inputs = new Map([[inputName, { data: Float64Array.from(input.data as Float32Array | BigInt64Array, Number), dims: [...input.dims] }]]);
  const labels = (batch8.labels as ort.Tensor).data as BigInt64Array;
  const checks = await checkModelGradients(step, signature, source, batch8, {
    lossFloat64: (parameters) => crossEntropyFloat64(source.proto, inputs, labels, mode === 'train', parameters),
    elements,
    // An evenly spread sample of the parameters, first and last included.
    parameters: evenlySpread(signature.parameters.map((p) => p.name), sample),
  });
  expect(checks.length).toBe(Math.min(sample, signature.parameters.length));
  for (const check of checks) expect(check.relativeError, `${name} ${check.parameter}`).toBeLessThan(TOLERANCE);

  const runner = await StepRunner.create(step, signature, source);
  try {
    const steps = fixtureBatch(name, 32, inputName);
    const first = scalarOf((await runner.step(steps, 0.01))[signature.loss]);
    let last = first;
    for (let t = 0; t < 4; t++) last = scalarOf((await runner.step(steps, 0.01))[signature.loss]);
    expect(last).toBeLessThan(first);
  } finally {
    await runner.release();
  }
}

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

  for (const mode of ['eval', 'train'] as const) {
    it(`should give lenet5's gradients and lower its loss (${mode} mode)`, async () => {
      await checkFixture('lenet5-fmnist', mode);
    });
  }
  // The larger CNNs in train mode only (batch statistics exercise more than frozen ones), on a sample.
  it("should give resnet8's gradients and lower its loss (train mode)", async () => {
    await checkFixture('resnet8-fmnist', 'train', { batch: 2, elements: 2, sample: 6 });
  });
  it("should give vgg11bn's gradients and lower its loss (train mode)", async () => {
    await checkFixture('vgg11bn-mnist', 'train', { batch: 2, elements: 2, sample: 6 });
  });
  it("should give tinybert's gradients and lower its loss", async () => {
    await checkFixture('tinybert-spam', 'train', { batch: 2, elements: 2, sample: 8 });
  });
});
