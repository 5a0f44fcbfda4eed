import { SeededRandom } from '@open-autoglm/core';
import { Dataset } from '../../dataset.js';
import { Trainer, type TrainerOptions } from '../Trainer.js';

/**
 * `n` samples of `classes` Gaussian blobs (sample i has class i mod classes) in `features`
 * dimensions: feature j of a sample is `offset`, plus 3 when j is its class, plus N(0, 0.5^2)
 * noise, so the classes are linearly separable.
 */
export function gaussianBlobs(n: number, seed: number, shape: { readonly features: number; readonly classes: number; readonly offset?: number }): Dataset {
  const { features, classes, offset = 0 } = shape;
  const random = new SeededRandom(seed);
  const x = new Float32Array(n * features);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % classes;
    y[i] = BigInt(label);
    for (let j = 0; j < features; j++) x[i * features + j] = (j === label ? 3 : 0) + offset + 0.5 * random.nextNormal();
  }
  return new Dataset(
    new Map([['x', { dtype: 'float32', shape: [n, features], data: x, file: undefined }]]),
    { dtype: 'int64', shape: [n], data: y, file: undefined },
  );
}

/** Runs `use` on a Trainer created from `options`, releasing it afterwards. */
export async function withTrainer<T>(options: TrainerOptions, use: (trainer: Trainer) => Promise<T>): Promise<T> {
  const trainer = await Trainer.create(options);
  try {
    return await use(trainer);
  } finally {
    await trainer.release();
  }
}
