import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAccessError } from '@open-autoglm/core';
import { runTrainingJob, type TrainingJob } from './runTrainingJob.js';
import { readCheckpoint } from './TrainingCheckpoint.js';
import type { TrainingEvent } from './Trainer.js';
import { trainInWorker } from './trainInWorker.js';
import { type MlpTrainingFiles, writeMlpTrainingFiles } from './test-support/mlpTrainingFiles.js';

describe('trainInWorker', () => {
  let dir: string;
  let files: MlpTrainingFiles;
  let job: TrainingJob;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-worker-'));
    files = await writeMlpTrainingFiles(dir);
    job = { model: files.model, data: files.trainX, labels: files.trainY, epochs: 2, batchSize: 16, schedule: { kind: 'constant', lr: 0.01 } };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should train in a worker thread from the TypeScript sources, reporting progress on the calling thread', async () => {
    const events: TrainingEvent[] = [];
    const output = path.join(dir, 'worker.onnx');
    const result = await trainInWorker({ ...job, output }, { onEvent: (e) => events.push(e) }).result;
    expect(result).toMatchObject({ completed: true, output, stepsPerEpoch: 6 });
    expect(events.filter((e) => e.kind === 'step')).toHaveLength(12);
    expect(events.filter((e) => e.kind === 'epoch')).toHaveLength(2);
    await access(output);
  });

  it('should distill in a worker thread from a teacher file, without labels', async () => {
    const teacher = path.join(dir, 'teacher.onnx');
    await runTrainingJob({ ...job, output: teacher }); // in this thread: one worker start is enough for the test
    const { labels: _labels, ...unlabelled } = job;
    const result = await trainInWorker({
      ...unlabelled,
      spec: { loss: [{ kind: 'distillation', temperature: 2, alpha: 1 }], optimizer: { kind: 'adamw' } },
      teacher: { model: teacher, cache: 'none' },
    }).result;
    expect(result).toMatchObject({ completed: true, steps: 12 });
    expect(result.finalLoss).toBeLessThan(result.history[0]!.trainLoss);
  });

  it('should stop at the next step boundary when asked and leave a checkpoint to resume from', async () => {
    const checkpoint = path.join(dir, 'stopped.ckpt');
    const run = trainInWorker({ ...job, epochs: 500, checkpoint }, {
      onEvent: (event) => {
        if (event.kind === 'step' && event.step === 3) run.stop();
      },
    });
    const result = await run.result;
    expect(result.completed).toBe(false);
    expect(result.checkpoint).toBe(checkpoint);
    // The flag is read after every update: the worker stops within a few updates of the request.
    expect(result.position.step).toBeGreaterThanOrEqual(3);
    expect(result.position.step).toBeLessThan(500 * 6);
    expect((await readCheckpoint(checkpoint)).position).toEqual(result.position);
  });

  it('should hand back errors of the worker as the same typed errors', async () => {
    const missing = path.join(dir, 'missing.x.npy');
    const error = await trainInWorker({ ...job, data: missing }).result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileAccessError);
    expect((error as FileAccessError).file).toBe(missing);
  });

  it('should run from the built package (dist) too', async () => {
    const dist = fileURLToPath(new URL('../../dist/training/trainInWorker.js', import.meta.url));
    const built = (await import(/* @vite-ignore */ dist)) as { trainInWorker: typeof trainInWorker };
    const result = await built.trainInWorker({ ...job, epochs: 1 }).result;
    expect(result).toMatchObject({ completed: true, steps: 6 });
  });
});
