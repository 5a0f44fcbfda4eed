import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, FileAccessError } from '@open-autoglm/core';
import { createSession } from '../session.js';
import { evaluateAccuracy } from '../evaluateAccuracy.js';
import { loadDataset } from '../dataset.js';
import { runTrainingJob, type TrainingJob, type TrainingJobSpec } from './runTrainingJob.js';
import { readCheckpoint } from './TrainingCheckpoint.js';
import { type MlpTrainingFiles, writeMlpTrainingFiles } from './test-support/mlpTrainingFiles.js';

describe('runTrainingJob', () => {
  let dir: string;
  let files: MlpTrainingFiles;
  let job: TrainingJob;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-job-'));
    files = await writeMlpTrainingFiles(dir);
    job = {
      model: files.model,
      data: files.trainX,
      labels: files.trainY,
      validation: { data: files.valX, labels: files.valY },
      epochs: 4,
      batchSize: 16,
      seed: 3,
      schedule: { kind: 'constant', lr: 0.01 },
    };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should train, evaluate every epoch and save a trained model that scores what the last epoch reported', async () => {
    const output = path.join(dir, 'trained.onnx');
    const result = await runTrainingJob({ ...job, output });
    expect(result).toMatchObject({ completed: true, output, checkpoint: null, stepsPerEpoch: 6 });
    expect(result.history).toHaveLength(4);
    expect(result.history.at(-1)!.trainLoss).toBeLessThan(result.history[0]!.trainLoss);
    const session = await createSession(output, { device: 'cpu', threads: 1 });
    try {
      const accuracy = await evaluateAccuracy(session, await loadDataset({ x: files.valX, y: files.valY }));
      expect(accuracy.accuracy).toBe(result.history.at(-1)!.validationAccuracy);
      expect(accuracy.accuracy).toBeGreaterThan(0.9);
    } finally {
      await session.release();
    }
  });

  it('should continue from its checkpoint, taking the run settings from it, to the same final loss', async () => {
    const full = await runTrainingJob(job);
    const checkpoint = path.join(dir, 'job.ckpt');
    const first = await runTrainingJob({ ...job, checkpoint, maxSteps: 9 });
    expect(first).toMatchObject({ completed: false, checkpoint, position: { step: 9, epoch: 1, batchInEpoch: 3 } });
    expect((await readCheckpoint(checkpoint)).position.step).toBe(9);
    const output = path.join(dir, 'resumed.onnx');
    // Only the data and the checkpoint: epochs, batch size, seed and schedule come from the checkpoint.
    const resumed = await runTrainingJob({ model: files.model, data: files.trainX, labels: files.trainY, resume: checkpoint, output });
    expect(resumed.completed).toBe(true);
    expect(resumed.steps).toBe(24 - 9);
    expect(Math.abs(resumed.finalLoss! - full.finalLoss!)).toBeLessThanOrEqual(1e-5);
  });

  it('should refuse to resume with options that change the run', async () => {
    const checkpoint = path.join(dir, 'other.ckpt');
    await runTrainingJob({ ...job, checkpoint, maxSteps: 2 });
    await expect(runTrainingJob({ ...job, resume: checkpoint, batchSize: 8 })).rejects.toThrow(ConfigError);
  });

  it('should distill from a teacher model file without labels', async () => {
    const teacher = path.join(dir, 'teacher.onnx');
    await runTrainingJob({ ...job, output: teacher });
    const { labels: _labels, ...unlabelled } = job;
    const spec: TrainingJobSpec = { loss: [{ kind: 'distillation', temperature: 2, alpha: 1 }], optimizer: { kind: 'adamw' } };
    const result = await runTrainingJob({ ...unlabelled, spec, teacher: { model: teacher } });
    expect(result.completed).toBe(true);
    expect(result.history.every((h) => h.trainAccuracy === null)).toBe(true); // the labels were never read
    expect(result.history.at(-1)!.validationAccuracy).toBeGreaterThan(0.9);
    await expect(runTrainingJob({ ...unlabelled, spec, teacher: { model: path.join(dir, 'no-teacher.onnx') } })).rejects.toThrow(
      /no-teacher\.onnx does not exist/,
    );
    await expect(runTrainingJob({ ...unlabelled, spec, teacher: { model: teacher }, output: teacher })).rejects.toThrow(/it is the teacher model/);
  });

  it('should fail before training, writing nothing, on an unwritable output or a missing model', async () => {
    const before = await readdir(dir);
    await expect(runTrainingJob({ ...job, output: path.join(dir, 'missing', 'out.onnx') })).rejects.toThrow(FileAccessError);
    await expect(runTrainingJob({ ...job, output: files.model })).rejects.toThrow(/it is the model being trained/);
    await expect(runTrainingJob({ ...job, model: path.join(dir, 'nope.onnx') })).rejects.toThrow(/nope\.onnx does not exist/);
    expect(await readdir(dir)).toEqual(before);
  });
});
