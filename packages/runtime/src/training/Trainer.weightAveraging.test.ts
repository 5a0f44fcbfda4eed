import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@open-autoglm/core';
import { tensorToArray } from '@open-autoglm/onnx';
import { Dataset } from '../dataset.js';
import { readCheckpoint, writeCheckpoint } from './TrainingCheckpoint.js';
import { AVERAGED_TENSOR_PREFIX, Trainer, type TrainerOptions } from './Trainer.js';
import { linearClassifierStep } from './test-support/linearClassifierStep.js';
import { gaussianBlobs, withTrainer } from './test-support/trainerTestSupport.js';

const FEATURES = 4;
const CLASSES = 3;
const blobs = (n: number, seed: number): Dataset => gaussianBlobs(n, seed, { features: FEATURES, classes: CLASSES });

function options(overrides: Partial<TrainerOptions> = {}): TrainerOptions {
  const { model, step } = linearClassifierStep(FEATURES, CLASSES);
  return { model, step, train: blobs(40, 1), epochs: 2, batchSize: 8, learningRate: 0.1, seed: 3, weightAveraging: { decay: 0.8 }, ...overrides };
}

const exported = (trainer: Trainer, name: string): Float32Array => tensorToArray(trainer.exportModel().graph.getInitializer(name)!) as Float32Array;

describe('Trainer weight averaging', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-trainer-averaging-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should export the moving average of every update\'s parameters and buffers, bias-corrected, computed by hand in float64', async () => {
    const opts = options();
    // The raw values after every update, read from the checkpoint (which keeps them apart from their averages).
    const raw: Record<'W' | 'b' | 'center', Float64Array[]> = { W: [], b: [], center: [] };
    const averaged = await withTrainer(opts, async (trainer) => {
      await trainer.train({
        onEvent: (event) => {
          if (event.kind !== 'step') return;
          const tensors = trainer.checkpoint().tensors;
          for (const name of ['W', 'b', 'center'] as const) raw[name].push(Float64Array.from(tensors.get(name)!.data as Float32Array));
        },
      });
      return { W: exported(trainer, 'W'), b: exported(trainer, 'b'), center: exported(trainer, 'center') };
    });
    expect(raw.W).toHaveLength(10); // 40 samples in batches of 8, 2 epochs
    for (const name of ['W', 'b', 'center'] as const) {
      // sum_t 0.8^(T - t) 0.2 w_t / (1 - 0.8^T): the starting values carry no weight.
      const expected = new Float64Array(raw[name][0]!.length);
      raw[name].forEach((value, index) => {
        const weight = (0.2 * 0.8 ** (raw[name].length - 1 - index)) / (1 - 0.8 ** raw[name].length);
        for (let k = 0; k < expected.length; k++) expected[k] = (expected[k] as number) + weight * (value[k] as number);
      });
      const last = raw[name].at(-1)!;
      for (let k = 0; k < expected.length; k++) expect(Math.abs((averaged[name][k] as number) - (expected[k] as number))).toBeLessThan(1e-5);
      // The average is not the last value (the test would pass trivially otherwise).
      expect(Math.max(...Array.from(last, (v, k) => Math.abs(v - (averaged[name][k] as number))))).toBeGreaterThan(1e-3);
    }
  });

  it('should resume mid-epoch with its averages and end exactly like the uninterrupted run', async () => {
    const uninterrupted = await withTrainer(options(), async (trainer) => {
      await trainer.train();
      return exported(trainer, 'W');
    });
    const file = path.join(dir, 'averaging.ckpt');
    await withTrainer(options(), async (trainer) => {
      await trainer.train({}, 7);
      const checkpoint = trainer.checkpoint();
      expect(checkpoint.tensors.has(`${AVERAGED_TENSOR_PREFIX}W`)).toBe(true);
      await writeCheckpoint(file, checkpoint);
    });
    const resumed = await withTrainer(options({ resume: await readCheckpoint(file) }), async (trainer) => {
      await trainer.train();
      return exported(trainer, 'W');
    });
    expect(resumed).toEqual(uninterrupted);
    await expect(Trainer.create(options({ resume: await readCheckpoint(file), weightAveraging: { decay: 0.9 } }))).rejects.toThrow(
      /weightAveraging is \{"decay":0.8\} in the checkpoint but \{"decay":0.9\} now/,
    );
  });

  it('should refuse a decay outside [0, 1)', async () => {
    await expect(Trainer.create(options({ weightAveraging: { decay: 1 } }))).rejects.toThrow(ConfigError);
    await expect(Trainer.create(options({ weightAveraging: { decay: -0.1 } }))).rejects.toThrow(/must be in \[0, 1\).*got -0.1/);
  });
});
