import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, DatasetError, ModelFormatError, SeededRandom } from '@open-autoglm/core';
import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { createSession, type Dataset, evaluateAccuracy, loadDataset } from '@open-autoglm/runtime';
import { distill } from './distill.js';
import { setUpFeaturePairs } from './featurePairs.js';
import { addFakeQuantization } from './test-support/addFakeQuantization.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));

async function lenet(): Promise<OnnxModel> {
  return OnnxModel.load(path.join(fixtures, 'lenet5-fmnist.onnx'));
}

/** LeNet-5 with half of conv2's output channels zeroed: a damaged student of the same shape. */
async function damagedLenet(): Promise<OnnxModel> {
  const model = await lenet();
  const weight = model.graph.getInitializer('conv2.weight')!;
  const values = Float32Array.from(tensorToArray(weight) as Float32Array);
  const perChannel = values.length / 16;
  for (let channel = 0; channel < 16; channel += 2) values.fill(0, channel * perChannel, (channel + 1) * perChannel);
  model.graph.setInitializer(arrayToTensor('conv2.weight', values, [16, 6, 5, 5]));
  return model;
}

async function accuracy(model: OnnxModel, data: Dataset): Promise<number> {
  const session = await createSession(model.toBytes(), { device: 'cpu', threads: 1 });
  try {
    return (await evaluateAccuracy(session, data, { batch: 250 })).accuracy;
  } finally {
    await session.release();
  }
}

const calibration = (labelled: boolean): Promise<Dataset> =>
  loadDataset({ x: path.join(fixtures, 'fmnist-calib.x.npy'), ...(labelled ? { y: path.join(fixtures, 'fmnist-calib.y.npy') } : {}) });
const validation = async (): Promise<Dataset> =>
  (await loadDataset({ x: path.join(fixtures, 'fmnist-val-2k.x.npy'), y: path.join(fixtures, 'fmnist-val-2k.y.npy') })).slice(0, 500);

describe('distill', () => {
  it('should recover a damaged student from its teacher without labels, keeping the best validated model', async () => {
    const student = await damagedLenet();
    const val = await validation();
    const before = await accuracy(student, val);
    const result = await distill({
      teacher: await lenet(),
      student,
      train: (await calibration(false)).slice(0, 640),
      validation: val,
      epochs: 2,
      batchSize: 32,
      learningRate: 2e-3,
      seed: 3,
    });
    expect(result.alpha).toBe(1);
    expect(result.stop).toBe('completed');
    expect(result.steps).toBe(40);
    const after = await accuracy(result.model, val);
    expect(after).toBe(result.validationAccuracy);
    expect(after).toBeGreaterThan(before + 0.05);
    const best = Math.max(...result.history.map((h) => h.validationAccuracy!));
    expect(result.validationAccuracy).toBe(best);
    expect(result.history[result.bestEpoch!]!.validationAccuracy).toBe(best);
  });

  it('should decay the learning rate linearly to 0 after the warm-up with schedule linear', async () => {
    const rates: number[] = [];
    await distill({
      teacher: await lenet(),
      student: await damagedLenet(),
      train: (await calibration(true)).slice(0, 96),
      epochs: 2,
      batchSize: 32,
      alpha: 0.5,
      learningRate: 0.01,
      warmupSteps: 2,
      schedule: 'linear',
      onEvent: (event) => {
        if (event.kind === 'step') rates.push(event.learningRate);
      },
    });
    // 6 updates: warm-up 0.005, 0.01; then 0.01 * (1 - t / 4) for t = 0..3.
    [0.005, 0.01, 0.01, 0.0075, 0.005, 0.0025].forEach((rate, i) => expect(rates[i]).toBeCloseTo(rate, 12));
    expect(rates).toHaveLength(6);
  });

  it('should stop at a step budget and distill features automatically matched by name', async () => {
    const result = await distill({
      teacher: await lenet(),
      student: await damagedLenet(),
      train: await calibration(true),
      validation: await validation(),
      steps: 12,
      batchSize: 32,
      alpha: 0.5,
      features: 'auto',
    });
    expect(result.stop).toBe('step-budget');
    expect(result.steps).toBe(12);
    expect(result.history).toEqual([]);
    expect(result.bestEpoch).toBeNull();
    expect(result.features).toEqual([{ student: '/pool2/MaxPool_output_0', teacher: '/pool2/MaxPool_output_0', distilled: '/pool2/MaxPool_output_0' }]);
    // One map per resolution, in graph order: 28x28 (relu1), 14x14 (pool1), 10x10 (relu2), 5x5 (pool2).
    const stages = setUpFeaturePairs(await damagedLenet(), await lenet(), 'stages', 0).pairs.map((p) => p.student);
    expect(stages).toEqual(['/relu1/Relu_output_0', '/pool1/MaxPool_output_0', '/relu2/Relu_output_0', '/pool2/MaxPool_output_0']);
    expect(result.validationAccuracy).toBeGreaterThan(0.5);
  });

  it('should train a fake-quantized (QDQ) student and export it with its QuantizeLinear/DequantizeLinear nodes', async () => {
    const teacher = await lenet();
    const student = await addFakeQuantization(await damagedLenet(), await calibration(false));
    const qdqNodes = student.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear').length;
    expect(qdqNodes).toBeGreaterThan(8);
    const val = await validation();
    const before = await accuracy(student, val);
    const result = await distill({ teacher, student, train: await calibration(true), epochs: 1, batchSize: 32, learningRate: 2e-3 });
    const exported = result.model;
    expect(exported.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear')).toHaveLength(qdqNodes);
    expect(exported.problems()).toEqual([]);
    expect(await accuracy(exported, val)).toBeGreaterThan(before + 0.05);
    expect(tensorToArray(exported.graph.getInitializer('conv2.weight')!)).not.toEqual(tensorToArray(student.graph.getInitializer('conv2.weight')!));
  });

  it('should train a real QDQ student (integer weights) and export real QDQ with the same scales', async () => {
    const student = await addFakeQuantization(await damagedLenet(), await calibration(false), { realWeights: true });
    const val = await validation();
    const before = await accuracy(student, val);
    const result = await distill({ teacher: await lenet(), student, train: await calibration(true), epochs: 1, batchSize: 32, learningRate: 2e-3 });
    expect(result.requantizedWeights).toBe(5);
    const exported = result.model;
    const typeOf = (m: OnnxModel, name: string): DataType | undefined => m.graph.getInitializer(name)?.dataType;
    for (const tensor of student.graph.initializers) {
      expect(typeOf(exported, tensor.name)).toBe(tensor.dataType);
      if (tensor.name.endsWith('.scale')) expect(tensorToArray(exported.graph.getInitializer(tensor.name)!)).toEqual(tensorToArray(tensor));
    }
    expect(exported.graph.nodes.map((n) => n.opType).sort()).toEqual(student.graph.nodes.map((n) => n.opType).sort());
    expect(tensorToArray(exported.graph.getInitializer('conv2.weight.quantized')!)).not.toEqual(tensorToArray(student.graph.getInitializer('conv2.weight.quantized')!));
    expect(await accuracy(exported, val)).toBeGreaterThan(before + 0.05);
  });

  it('should stop early when validation accuracy stops improving, and honour an abort', async () => {
    // A linear classifier without BatchNorm trained at learning rate 0: its accuracy never changes.
    const linear = (seed: number): OnnxModel => {
      const random = new SeededRandom(seed);
      return new OnnxModel(
        makeModel({
          name: 'linear',
          node: [makeNode('Flatten', ['input'], ['flat']), makeNode('Gemm', ['flat', 'W', 'b'], ['logits'], { transB: 1 })],
          input: [makeTensorValueInfo('input', DataType.FLOAT, ['batch', 1, 28, 28])],
          output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', 10])],
          initializer: [
            arrayToTensor('W', Float32Array.from({ length: 7840 }, () => random.nextNormal() * 0.05), [10, 784]),
            arrayToTensor('b', new Float32Array(10), [10]),
          ],
        }),
      );
    };
    const train = (await calibration(true)).slice(0, 200);
    const options = { teacher: linear(1), student: linear(2), train, validation: await validation(), epochs: 6, batchSize: 50, learningRate: 0, optimizer: { kind: 'sgd' as const } };
    const stopped = await distill({ ...options, patience: 2 });
    expect(stopped.stop).toBe('early-stopping');
    expect(stopped.history).toHaveLength(3); // epoch 0 sets the best; epochs 1 and 2 do not beat it
    expect(stopped.bestEpoch).toBe(0);
    const controller = new AbortController();
    const aborted = await distill({ ...options, signal: controller.signal, onEvent: (e) => e.kind === 'step' && e.step === 2 && controller.abort() });
    expect(aborted).toMatchObject({ stop: 'aborted', steps: 2, bestEpoch: null });
  });

  it('should distill on augmented batches the teacher sees too, and refuse a teacher cache with augmentation', async () => {
    const options = {
      teacher: await lenet(),
      student: await damagedLenet(),
      train: (await calibration(true)).slice(0, 96),
      batchSize: 32,
      steps: 3,
      alpha: 0.5,
      learningRate: 2e-3,
      augmentation: { translate: 2, flip: true },
    };
    const losses: number[] = [];
    const result = await distill({ ...options, onEvent: (e) => e.kind === 'step' && losses.push(e.loss) });
    expect(result.steps).toBe(3);
    expect(result.model.problems()).toEqual([]);
    // Same seed, same augmentation: the same updates; another seed draws other shifts.
    const again: number[] = [];
    await distill({ ...options, onEvent: (e) => e.kind === 'step' && again.push(e.loss) });
    expect(again).toEqual(losses);
    await expect(distill({ ...options, teacherCache: 'memory' })).rejects.toThrow(/Use teacher cache 'none' \(the default with augmentation\)/);
  });

  it('should refuse a teacher with other outputs, data of another shape, and alpha < 1 without labels, before training', async () => {
    const teacher = await lenet();
    const wrongOutputs = await lenet();
    const fc3 = wrongOutputs.graph.getInitializer('fc3.weight')!;
    wrongOutputs.graph.setInitializer(arrayToTensor('fc3.weight', (tensorToArray(fc3) as Float32Array).slice(0, 84 * 5), [5, 84]));
    wrongOutputs.graph.setInitializer(arrayToTensor('fc3.bias', new Float32Array(5), [5]));
    const output = wrongOutputs.graph.outputs[0]!;
    const tensorType = output.type!.value;
    if (tensorType.case === 'tensorType') tensorType.value.shape!.dim[1]!.value = { case: 'dimValue', value: 5n };
    const train = await calibration(true);
    await expect(distill({ teacher: wrongOutputs, student: await lenet(), train, steps: 1 })).rejects.toThrow(ModelFormatError);
    await expect(distill({ teacher: wrongOutputs, student: await lenet(), train, steps: 1 })).rejects.toThrow(
      /first output "logits" is \[batch, 5\] but the student's "logits" is \[batch, 10\]/,
    );
    const flat = await loadDataset({ x: { dtype: 'float32', shape: [4, 784], data: new Float32Array(4 * 784), file: 'flat.npy' } });
    await expect(distill({ teacher, student: await lenet(), train: flat, steps: 1 })).rejects.toThrow(DatasetError);
    await expect(distill({ teacher, student: await lenet(), train: await calibration(false), alpha: 0.5 })).rejects.toThrow(ConfigError);
  });
});
