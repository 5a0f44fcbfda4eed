import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTrainingStep, OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { loadDataset } from '../dataset.js';
import { reinitializeParameters } from './reinitializeParameters.js';
import { Trainer, type TrainerOptions } from './Trainer.js';

const fixtures = fileURLToPath(new URL('../../../../fixtures/', import.meta.url));

/** LeNet-5 (Conv, BatchNormalization in train mode, MaxPool, Flatten, Gemm) re-initialized, on a slice of fmnist-val-2k. */
async function lenetOptions(overrides: Partial<TrainerOptions> = {}): Promise<TrainerOptions> {
  const model = await OnnxModel.load(path.join(fixtures, 'lenet5-fmnist.onnx'));
  reinitializeParameters(model, 0);
  const step = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adamw' } }).model;
  const data = await loadDataset({ x: path.join(fixtures, 'fmnist-val-2k.x.npy'), y: path.join(fixtures, 'fmnist-val-2k.y.npy') });
  return {
    model, step, train: data.slice(0, 1500), validation: data.slice(1500), epochs: 1, batchSize: 32, learningRate: 2e-3, seed: 1, ...overrides,
  };
}

describe('Trainer on LeNet-5', () => {
  it('should learn Fashion-MNIST from scratch and export trained BatchNorm running statistics', async () => {
    const trainer = await Trainer.create(await lenetOptions());
    try {
      const result = await trainer.train();
      // One epoch over 1,500 images: far above chance (10 %); the 3-epoch, 10k-image acceptance run is in bench:train.
      expect(result.history[0]!.validationAccuracy).toBeGreaterThan(0.6);
      const exported = trainer.exportModel();
      const runningMean = tensorToArray(exported.graph.getInitializer('bn1.running_mean')!) as Float32Array;
      expect([...runningMean].some((v) => v !== 0)).toBe(true); // reinitialized to 0, updated by training
      expect(exported.problems()).toEqual([]);
    } finally {
      await trainer.release();
    }
  });

  it('should resume a mid-epoch checkpoint to the uninterrupted final loss', async () => {
    const options = await lenetOptions({ train: (await lenetOptions()).train.slice(0, 320), validation: undefined, epochs: 2 });
    const full = await Trainer.create(options);
    const interrupted = await Trainer.create(options);
    try {
      const expected = await full.train();
      await interrupted.train({}, 15); // 10 updates per epoch: stop in the middle of the second
      const resumed = await Trainer.create({ ...options, resume: interrupted.checkpoint() });
      try {
        const result = await resumed.train();
        expect(result.steps).toBe(5);
        expect(Math.abs(result.finalLoss! - expected.finalLoss!)).toBeLessThanOrEqual(1e-5);
      } finally {
        await resumed.release();
      }
    } finally {
      await full.release();
      await interrupted.release();
    }
  });
});
