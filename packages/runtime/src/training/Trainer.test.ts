import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DatasetError } from '@open-autoglm/core';
import { tensorToArray } from '@open-autoglm/onnx';
import { Dataset } from '../dataset.js';
import { createSession } from '../session.js';
import { evaluateAccuracy } from '../evaluateAccuracy.js';
import { readCheckpoint, writeCheckpoint } from './TrainingCheckpoint.js';
import { Trainer, type TrainerOptions, type TrainingEvent } from './Trainer.js';
import { linearClassifierStep } from './test-support/linearClassifierStep.js';
import { gaussianBlobs, withTrainer } from './test-support/trainerTestSupport.js';

const FEATURES = 4;
const CLASSES = 3;
const blobs = (n: number, seed: number): Dataset => gaussianBlobs(n, seed, { features: FEATURES, classes: CLASSES, offset: 1 });

function options(overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const { model, step } = linearClassifierStep(FEATURES, CLASSES);
  return { model, step, train: blobs(50, 1), epochs: 3, batchSize: 8, learningRate: 0.05, seed: 7, ...overrides };
}

describe('Trainer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-trainer-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should feed updated parameters and optimizer state back: two full-batch updates match a float64 reference', async () => {
    const opts = options({ batchSize: 50, epochs: 2, learningRate: (update) => (update === 1 ? 0.1 : 0.05) });
    const w0 = Float64Array.from(tensorToArray(opts.model.graph.getInitializer('W')!) as Float32Array);
    const b0 = new Float64Array(CLASSES);
    const x = opts.train.feature('x').data as Float32Array;
    const y = opts.train.labels!.data as BigInt64Array;
    const n = opts.train.size;
    // Reference in float64: SGD momentum 0.9 on the mean cross-entropy; center' = 0.9 center + 0.1 mean(x).
    const gradients = (w: Float64Array, b: Float64Array, center: Float64Array): [Float64Array, Float64Array] => {
      const gw = new Float64Array(CLASSES * FEATURES);
      const gb = new Float64Array(CLASSES);
      for (let i = 0; i < n; i++) {
        const xc = Array.from({ length: FEATURES }, (_, j) => (x[i * FEATURES + j] as number) - (center[j] as number));
        const logits = Array.from({ length: CLASSES }, (_, c) => (b[c] as number) + xc.reduce((s, v, j) => s + v * (w[c * FEATURES + j] as number), 0));
        const max = Math.max(...logits);
        const exps = logits.map((l) => Math.exp(l - max));
        const total = exps.reduce((a, e) => a + e, 0);
        for (let c = 0; c < CLASSES; c++) {
          const residual = (exps[c] as number) / total - (Number(y[i]) === c ? 1 : 0);
          gb[c]! += residual / n;
          for (let j = 0; j < FEATURES; j++) gw[c * FEATURES + j]! += (residual * (xc[j] as number)) / n;
        }
      }
      return [gw, gb];
    };
    const mean = Array.from({ length: FEATURES }, (_, j) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i * FEATURES + j] as number;
      return s / n;
    });
    const center0 = new Float64Array(FEATURES);
    const [gw1, gb1] = gradients(w0, b0, center0);
    const w1 = w0.map((w, k) => w - 0.1 * (gw1[k] as number));
    const b1 = b0.map((b, k) => b - 0.1 * (gb1[k] as number));
    const center1 = center0.map((c, j) => 0.9 * c + 0.1 * (mean[j] as number));
    const [gw2, gb2] = gradients(w1, b1, center1);
    const w2 = w1.map((w, k) => w - 0.05 * (0.9 * (gw1[k] as number) + (gw2[k] as number)));
    const b2 = b1.map((b, k) => b - 0.05 * (0.9 * (gb1[k] as number) + (gb2[k] as number)));
    const center2 = center1.map((c, j) => 0.9 * c + 0.1 * (mean[j] as number));

    await withTrainer(opts, async (trainer) => {
      const result = await trainer.train();
      expect(result).toMatchObject({ completed: true, steps: 2, position: { step: 2, epoch: 2, batchInEpoch: 0 } });
      const exported = trainer.exportModel();
      const close = (actual: ArrayLike<number>, expected: ArrayLike<number>): void => {
        for (let k = 0; k < expected.length; k++) expect(Math.abs((actual[k] as number) - (expected[k] as number))).toBeLessThan(1e-5);
      };
      close(tensorToArray(exported.graph.getInitializer('W')!) as Float32Array, w2);
      close(tensorToArray(exported.graph.getInitializer('b')!) as Float32Array, b2);
      close(tensorToArray(exported.graph.getInitializer('center')!) as Float32Array, center2);
    });
  });

  it('should learn separable data, reporting every step and epoch with validation accuracy', async () => {
    const events: TrainingEvent[] = [];
    const result = await withTrainer(options({ validation: blobs(30, 2) }), (trainer) => trainer.train({ onEvent: (e) => events.push(e) }));
    const steps = events.filter((e) => e.kind === 'step');
    const epochs = events.filter((e) => e.kind === 'epoch');
    expect(steps).toHaveLength(3 * 7); // 50 samples in batches of 8: 6 full + 1 partial per epoch
    expect(steps.at(-1)).toMatchObject({ step: 21, totalSteps: 21, batchInEpoch: 7, batchesPerEpoch: 7, epoch: 2, epochs: 3, etaSeconds: 0 });
    expect(steps.every((e) => e.kind === 'step' && e.samplesPerSecond > 0 && e.learningRate === 0.05)).toBe(true);
    expect(epochs).toHaveLength(3);
    expect(result.history.map((h) => h.samples)).toEqual([50, 50, 50]);
    expect(result.history[2]!.trainLoss).toBeLessThan(result.history[0]!.trainLoss);
    expect(result.history[2]!.validationAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(result.history[2]!.trainAccuracy).toBeGreaterThan(0.8);
    expect(result.finalLoss).toBe(steps.at(-1)?.kind === 'step' ? steps.at(-1)!.loss : undefined);
  });

  it('should drop the last partial batch when asked', async () => {
    await withTrainer(options({ dropLast: true, epochs: 1 }), async (trainer) => {
      expect(trainer.stepsPerEpoch).toBe(6);
      const result = await trainer.train();
      expect(result.history[0]!.samples).toBe(48);
    });
  });

  it('should resume from a mid-epoch checkpoint and end exactly like the uninterrupted run', async () => {
    const uninterrupted = await withTrainer(options(), async (trainer) => {
      const result = await trainer.train();
      return { result, w: tensorToArray(trainer.exportModel().graph.getInitializer('W')!) };
    });
    const file = path.join(dir, 'mid.ckpt');
    // Stop in the middle of the second epoch (7 updates per epoch).
    const first = await withTrainer(options(), async (trainer) => {
      const result = await trainer.train({}, 10);
      await writeCheckpoint(file, trainer.checkpoint());
      return result;
    });
    expect(first).toMatchObject({ completed: false, steps: 10, position: { step: 10, epoch: 1, batchInEpoch: 3 } });
    const resumed = await withTrainer(options({ resume: await readCheckpoint(file) }), async (trainer) => {
      const result = await trainer.train();
      return { result, w: tensorToArray(trainer.exportModel().graph.getInitializer('W')!) };
    });
    expect(resumed.result.steps).toBe(11);
    expect(resumed.result.completed).toBe(true);
    expect(Math.abs(resumed.result.finalLoss! - uninterrupted.result.finalLoss!)).toBeLessThanOrEqual(1e-5);
    expect(resumed.w).toEqual(uninterrupted.w);
    expect(resumed.result.history.map((h) => h.trainLoss)).toEqual(uninterrupted.result.history.map((h) => h.trainLoss));
  });

  it('should stop at a step boundary when the hook asks, and refuse a checkpoint of another run', async () => {
    const checkpoint = await withTrainer(options(), async (trainer) => {
      let calls = 0;
      const result = await trainer.train({ shouldStop: () => ++calls >= 4 });
      expect(result).toMatchObject({ completed: false, steps: 4, position: { step: 4, epoch: 0, batchInEpoch: 4 } });
      return trainer.checkpoint();
    });
    await expect(Trainer.create(options({ resume: checkpoint, batchSize: 16 }))).rejects.toThrow(
      /batchSize is 8 in the checkpoint but 16 now/,
    );
    await expect(Trainer.create(options({ resume: checkpoint, seed: 8 }))).rejects.toThrow(ConfigError);
  });

  it('should export a model that evaluates like the trainer does', async () => {
    const validation = blobs(30, 3);
    await withTrainer(options({ epochs: 1 }), async (trainer) => {
      await trainer.train();
      const expected = await trainer.evaluate(validation);
      const file = path.join(dir, 'trained.onnx');
      await trainer.exportModel().save(file);
      const session = await createSession(file, { device: 'cpu', threads: 1 });
      try {
        expect((await evaluateAccuracy(session, validation)).accuracy).toBe(expected);
      } finally {
        await session.release();
      }
    });
  });

  it('should reject data that does not fit the step with one clear error', async () => {
    const wide = new Dataset(
      new Map([['x', { dtype: 'float32', shape: [4, 5], data: new Float32Array(20), file: 'wide.npy' }]]),
      { dtype: 'int64', shape: [4], data: new BigInt64Array(4), file: 'y.npy' },
    );
    await expect(Trainer.create(options({ train: wide }))).rejects.toThrow(/wide\.npy\) has samples of shape \[5\]/);
    const unlabelled = new Dataset(new Map([['x', { dtype: 'float32', shape: [4, 4], data: new Float32Array(16), file: 'x.npy' }]]), undefined);
    await expect(Trainer.create(options({ train: unlabelled }))).rejects.toThrow(DatasetError);
    const negative = new Dataset(
      new Map([['x', { dtype: 'float32', shape: [2, 4], data: new Float32Array(8), file: 'x.npy' }]]),
      { dtype: 'int64', shape: [2], data: new BigInt64Array([0n, -1n]), file: 'y.npy' },
    );
    await expect(Trainer.create(options({ train: negative }))).rejects.toThrow(/negative class id -1/);
    await expect(Trainer.create(options({ epochs: 0 }))).rejects.toThrow(/epochs must be a whole number >= 1/);
    await expect(Trainer.create(options({ batchSize: 64, dropLast: true }))).rejects.toThrow(/fewer than one batch/);
  });
});
