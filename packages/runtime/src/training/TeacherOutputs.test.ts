import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ModelFormatError, SeededRandom } from '@open-autoglm/core';
import { Tensor } from 'onnxruntime-node';
import {
  arrayToTensor,
  buildTrainingStep,
  DataType,
  describeTrainingStep,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  OnnxModel,
  tensorToArray,
  type TrainingStepSpec,
} from '@open-autoglm/onnx';
import { Dataset } from '../dataset.js';
import { Trainer, type TrainingEvent } from './Trainer.js';
import type { TensorMap } from '../session.js';
import { type TeacherCache, TeacherOutputs } from './TeacherOutputs.js';

const FEATURES = 4;
const HIDDEN = 5;

/** x -> Gemm -> Relu ("features") -> Gemm -> logits, with seeded weights. */
function mlp(seed: number, classes: number): OnnxModel {
  const random = new SeededRandom(seed);
  const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => random.nextNormal() * 0.7);
  return new OnnxModel(
    makeModel({
      name: 'mlp',
      node: [
        makeNode('Gemm', ['x', 'W1', 'b1'], ['pre'], { transB: 1 }),
        makeNode('Relu', ['pre'], ['features']),
        makeNode('Gemm', ['features', 'W2', 'b2'], ['logits'], { transB: 1 }),
      ],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', FEATURES])],
      output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', classes])],
      initializer: [
        arrayToTensor('W1', values(HIDDEN * FEATURES), [HIDDEN, FEATURES]),
        arrayToTensor('b1', values(HIDDEN), [HIDDEN]),
        arrayToTensor('W2', values(classes * HIDDEN), [classes, HIDDEN]),
        arrayToTensor('b2', values(classes), [classes]),
      ],
    }),
  );
}

/** Forward pass of `mlp` in float64. */
function forward64(model: OnnxModel, x: ArrayLike<number>, classes: number): { features: number[]; logits: number[] } {
  const get = (name: string): Float32Array => tensorToArray(model.graph.getInitializer(name)!) as Float32Array;
  const [w1, b1, w2, b2] = [get('W1'), get('b1'), get('W2'), get('b2')];
  const features = Array.from({ length: HIDDEN }, (_, h) => {
    let s = b1[h] as number;
    for (let j = 0; j < FEATURES; j++) s += (w1[h * FEATURES + j] as number) * (x[j] as number);
    return Math.max(0, s);
  });
  const logits = Array.from({ length: classes }, (_, c) => {
    let s = b2[c] as number;
    for (let h = 0; h < HIDDEN; h++) s += (w2[c * HIDDEN + h] as number) * (features[h] as number);
    return s;
  });
  return { features, logits };
}

function logSoftmax(z: readonly number[]): number[] {
  const max = Math.max(...z);
  const log = Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
  return z.map((v) => v - log);
}

function dataset(n: number, seed: number, classes: number): Dataset {
  const random = new SeededRandom(seed);
  const x = Float32Array.from({ length: n * FEATURES }, () => random.nextNormal());
  const y = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % classes));
  return new Dataset(new Map([['x', { dtype: 'float32', shape: [n, FEATURES], data: x, file: undefined }]]), {
    dtype: 'int64',
    shape: [n],
    data: y,
    file: undefined,
  });
}

const SPEC: TrainingStepSpec = {
  loss: [
    { kind: 'distillation', temperature: 2, alpha: 0.7 },
    { kind: 'mse', pairs: [{ student: 'features' }], weight: 0.5 },
  ],
  optimizer: { kind: 'sgd' },
};

async function losses(cache: TeacherCache, epochs: number, batchSize: number, train: Dataset): Promise<number[]> {
  const student = mlp(1, 3);
  const trainer = await Trainer.create({
    model: student,
    step: buildTrainingStep(student, SPEC).model,
    train,
    epochs,
    batchSize,
    learningRate: 0.05,
    teacher: { model: mlp(2, 3), cache },
  });
  try {
    const events: TrainingEvent[] = [];
    await trainer.train({ onEvent: (e) => events.push(e) });
    return events.flatMap((e) => (e.kind === 'step' ? [e.loss] : []));
  } finally {
    await trainer.release();
  }
}

describe('TeacherOutputs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-teacher-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should feed teacher logits and features so the step loss matches a float64 reference', async () => {
    const classes = 3;
    const train = dataset(6, 3, classes);
    const [firstLoss] = await losses('none', 1, 6, train);
    const student = mlp(1, classes);
    const teacher = mlp(2, classes);
    const x = train.feature('x').data as Float32Array;
    const y = train.labels!.data as BigInt64Array;
    const temperature = 2;
    const alpha = 0.7;
    let kl = 0;
    let crossEntropy = 0;
    let squaredError = 0;
    for (let i = 0; i < 6; i++) {
      const sample = x.subarray(i * FEATURES, (i + 1) * FEATURES);
      const s = forward64(student, sample, classes);
      const t = forward64(teacher, sample, classes);
      const logS = logSoftmax(s.logits.map((v) => v / temperature));
      const logT = logSoftmax(t.logits.map((v) => v / temperature));
      kl += logT.reduce((sum, lt, c) => sum + Math.exp(lt) * (lt - (logS[c] as number)), 0);
      crossEntropy -= logSoftmax(s.logits)[Number(y[i])] as number;
      squaredError += s.features.reduce((sum, f, h) => sum + (f - (t.features[h] as number)) ** 2, 0);
    }
    const expected = alpha * temperature ** 2 * (kl / 6) + (1 - alpha) * (crossEntropy / 6) + 0.5 * (squaredError / (6 * HIDDEN));
    expect(expected).toBeGreaterThan(0.1);
    expect(Math.abs(firstLoss! - expected)).toBeLessThan(1e-5);
  });

  it('should give the same updates with teacher outputs cached in memory or on disk as without a cache', async () => {
    const train = dataset(20, 4, 3);
    const uncached = await losses('none', 3, 8, train);
    expect(uncached).toHaveLength(9);
    expect(await losses('memory', 3, 8, train)).toEqual(uncached);
    expect(await losses({ directory: dir }, 3, 8, train)).toEqual(uncached);
    expect(await readdir(dir)).toEqual([]); // the cache folder is removed on release
  });

  it('should reject a teacher whose outputs do not match the student, and a missing or needless teacher', async () => {
    const student = mlp(1, 3);
    const step = buildTrainingStep(student, SPEC).model;
    const train = dataset(6, 3, 3);
    const base = { model: student, step, train, epochs: 1, batchSize: 6, learningRate: 0.1 };
    const wide = await Trainer.create({ ...base, teacher: { model: mlp(2, 4) } });
    try {
      await expect(wide.train()).rejects.toThrow(ModelFormatError);
      await expect(wide.train()).rejects.toThrow(/gives "logits" as float32\[6, 4\].*student's logits are float32\[batch, 3\]/);
    } finally {
      await wide.release();
    }
    await expect(Trainer.create({ ...base, teacher: { model: mlp(2, 3), features: { features: 'nowhere' } } })).rejects.toThrow(
      /has no tensor "nowhere"/,
    );
    await expect(Trainer.create(base)).rejects.toThrow(ConfigError);
    const plain = buildTrainingStep(student, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } }).model;
    await expect(Trainer.create({ ...base, step: plain, teacher: { model: mlp(2, 3) } })).rejects.toThrow(/takes no teacher outputs/);
  });
});

describe('TeacherOutputs with a per-sample shape that changes between batches', () => {
  /** x [batch, length] -> Mul(x, scale) -> "features": a student for any sequence length. */
  const student = new OnnxModel(
    makeModel({
      name: 'student',
      node: [makeNode('Mul', ['x', 'scale'], ['features'])],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 'length'])],
      output: [makeTensorValueInfo('features', DataType.FLOAT, ['batch', 'length'])],
      initializer: [arrayToTensor('scale', Float32Array.of(0.5), [1])],
    }),
  );
  /** The teacher's "features" is Relu(x): as long as the batch's sequences. */
  const teacher = new OnnxModel(
    makeModel({
      name: 'teacher',
      node: [makeNode('Relu', ['x'], ['features'])],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 'length'])],
      output: [makeTensorValueInfo('features', DataType.FLOAT, ['batch', 'length'])],
    }),
  );
  const signature = describeTrainingStep(buildTrainingStep(student, { trainable: ['scale'], loss: [{ kind: 'mse', pairs: [{ student: 'features' }] }], optimizer: { kind: 'sgd' } }).model);
  const batchOf = (length: number): TensorMap => ({
    [signature.batchInputs[0]!.name]: new Tensor('float32', Float32Array.from({ length: 2 * length }, (_, i) => i - length), [2, length]),
  });

  it('should refuse to cache it, naming the tensor and both shapes, in memory and on disk', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'autoglm-teacher-'));
    try {
      for (const cache of ['memory', { directory: dir }] as const) {
        const outputs = await TeacherOutputs.create({ model: teacher, cache }, signature, 4, { device: 'cpu', threads: 1 });
        try {
          await outputs.forBatch(batchOf(3), Uint32Array.of(0, 1));
          await expect(outputs.forBatch(batchOf(5), Uint32Array.of(2, 3))).rejects.toThrow(ConfigError);
          await expect(outputs.forBatch(batchOf(5), Uint32Array.of(2, 3))).rejects.toThrow(/"features" with per-sample shape \[5\] in this batch, but \[3\] in an earlier one.*cache 'none'/);
        } finally {
          await outputs.release();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('should feed it batch by batch without a cache', async () => {
    const outputs = await TeacherOutputs.create({ model: teacher, cache: 'none' }, signature, 4, { device: 'cpu', threads: 1 });
    try {
      await outputs.forBatch(batchOf(3), Uint32Array.of(0, 1));
      const fed = Object.values(await outputs.forBatch(batchOf(5), Uint32Array.of(2, 3)))[0]!;
      expect(fed.dims).toEqual([2, 5]);
      expect(Array.from(fed.data as Float32Array)).toEqual(Array.from({ length: 10 }, (_, i) => Math.max(0, i - 5)));
    } finally {
      await outputs.release();
    }
  });
});
