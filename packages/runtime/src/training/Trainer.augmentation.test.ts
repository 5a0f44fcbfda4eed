import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ConfigError, SeededRandom } from '@open-autoglm/core';
import {
  arrayToTensor,
  buildTrainingStep,
  DataType,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  OnnxModel,
  type TrainingStepSpec,
} from '@open-autoglm/onnx';
import { Dataset } from '../dataset.js';
import type { TrainingCheckpoint } from './TrainingCheckpoint.js';
import { Trainer, type TrainerOptions, type TrainingEvent } from './Trainer.js';
import { linearClassifierStep } from './test-support/linearClassifierStep.js';

const SIDE = 4;
const CLASSES = 3;

/** x [batch, 1, 4, 4] -> Flatten -> Gemm -> logits, with seeded weights. */
function imageClassifier(seed: number): OnnxModel {
  const random = new SeededRandom(seed);
  const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => random.nextNormal() * 0.5);
  return new OnnxModel(
    makeModel({
      name: 'image_classifier',
      node: [makeNode('Flatten', ['x'], ['flat'], { axis: 1 }), makeNode('Gemm', ['flat', 'W', 'b'], ['logits'], { transB: 1 })],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 1, SIDE, SIDE])],
      output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', CLASSES])],
      initializer: [arrayToTensor('W', values(CLASSES * SIDE * SIDE), [CLASSES, SIDE * SIDE]), arrayToTensor('b', values(CLASSES), [CLASSES])],
    }),
  );
}

/** Random images whose left and right halves differ, so a flip or a shift changes every model output. */
function images(n: number): Dataset {
  const random = new SeededRandom(9);
  const x = Float32Array.from({ length: n * SIDE * SIDE }, (_, i) => random.nextFloat() + (i % SIDE < SIDE / 2 ? 1 : 0));
  return new Dataset(new Map([['x', { dtype: 'float32', shape: [n, 1, SIDE, SIDE], data: x, file: undefined }]]), {
    dtype: 'int64',
    shape: [n],
    data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % CLASSES)),
    file: undefined,
  });
}

const DISTILLATION: TrainingStepSpec = { loss: [{ kind: 'distillation', temperature: 2, alpha: 0.5 }], optimizer: { kind: 'sgd' } };

function options(overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const student = imageClassifier(1);
  return {
    model: student,
    step: buildTrainingStep(student, DISTILLATION).model,
    train: images(20),
    epochs: 2,
    batchSize: 8,
    learningRate: 0.1,
    seed: 3,
    teacher: { model: imageClassifier(2) },
    augmentation: { translate: 1, flip: true },
    ...overrides,
  };
}

async function stepLosses(opts: TrainerOptions, maxSteps?: number): Promise<{ losses: number[]; checkpoint: TrainingCheckpoint }> {
  const trainer = await Trainer.create(opts);
  try {
    const events: TrainingEvent[] = [];
    await trainer.train({ onEvent: (e) => events.push(e) }, maxSteps);
    return { losses: events.flatMap((e) => (e.kind === 'step' ? [e.loss] : [])), checkpoint: trainer.checkpoint() };
  } finally {
    await trainer.release();
  }
}

describe('Trainer with image augmentation', () => {
  it('should feed the teacher the augmented batch the student sees', async () => {
    // A teacher equal to the student: on the same input their distributions agree, so the KL term is 0.
    const student = imageClassifier(1);
    const pure: TrainingStepSpec = { loss: [{ kind: 'distillation', temperature: 2, alpha: 1 }], optimizer: { kind: 'sgd' } };
    const { losses } = await stepLosses(options({ step: buildTrainingStep(student, pure).model, teacher: { model: imageClassifier(1) } }));
    expect(losses).toHaveLength(6);
    for (const loss of losses) expect(Math.abs(loss)).toBeLessThan(1e-5);
    // While the augmentation does change what the models see: cross-entropy differs from the unaugmented run's.
    const crossEntropy = buildTrainingStep(student, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } }).model;
    const plain = await stepLosses(options({ step: crossEntropy, augmentation: undefined, teacher: undefined }));
    const augmented = await stepLosses(options({ step: crossEntropy, teacher: undefined }));
    expect(augmented.losses[0]).not.toBeCloseTo(plain.losses[0] as number, 3);
  });

  it('should redraw the same augmentation after a resume, and refuse a checkpoint of a run augmented otherwise', async () => {
    const whole = await stepLosses(options());
    const first = await stepLosses(options(), 4);
    const rest = await stepLosses(options({ resume: first.checkpoint }));
    expect([...first.losses, ...rest.losses]).toEqual(whole.losses);
    const again = await stepLosses(options());
    expect(again.losses).toEqual(whole.losses);
    await expect(Trainer.create(options({ resume: first.checkpoint, augmentation: { translate: 2, flip: true } }))).rejects.toThrow(
      /augmentation is \{"translate":1,"padding":"zero","flip":true\} in the checkpoint but \{"translate":2/,
    );
  });

  it('should refuse inputs that are not images, a shift as large as the image, and a cached teacher', async () => {
    const { model, step } = linearClassifierStep(4, 3);
    const flat = new Dataset(new Map([['x', { dtype: 'float32', shape: [6, 4], data: new Float32Array(24), file: 'flat.npy' }]]), {
      dtype: 'int64',
      shape: [6],
      data: new BigInt64Array(6),
      file: undefined,
    });
    const base = { model, step, train: flat, epochs: 1, batchSize: 2, learningRate: 0.1 };
    await expect(Trainer.create({ ...base, augmentation: { flip: true } })).rejects.toThrow(ConfigError);
    await expect(Trainer.create({ ...base, augmentation: { flip: true } })).rejects.toThrow(
      /float32 images \[N, C, H, W\], but training input "x" \(flat\.npy\) is float32\[6, 4\]\. Turn augmentation off/,
    );
    await expect(Trainer.create(options({ augmentation: { translate: SIDE } }))).rejects.toThrow(/translate 4 shifts .* 4x4 pixels/);
    await expect(Trainer.create(options({ teacher: { model: imageClassifier(2), cache: 'memory' } }))).rejects.toThrow(
      /with augmentation every epoch feeds a differently shifted or mirrored sample.*Use teacher cache 'none'/,
    );
    // Nothing to augment (no shift, no flip): the data need not be images.
    await (await Trainer.create({ ...base, augmentation: { translate: 0 } })).release();
  });
});
