import { loadDataset } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { computeParameterGradients } from './computeParameterGradients.js';
import { StructuredPruner } from './StructuredPruner.js';
import { fixturePath, loadFixture } from './test-support/pruningModels.js';

describe('computeParameterGradients', () => {
  it('should weight each batch by its samples: batches of 64 + 36 give the gradient of one batch of 100', async () => {
    const model = await loadFixture('lenet5-fmnist');
    const data = await loadDataset({ x: fixturePath('fmnist-calib.x.npy'), y: fixturePath('fmnist-calib.y.npy') });
    const parameters = new StructuredPruner(model).taylorParameters();
    const whole = await computeParameterGradients(model, parameters, data, { batchSize: 100, samples: 100 });
    const split = await computeParameterGradients(model, parameters, data, { batchSize: 64, samples: 100 });
    expect([...split.keys()].sort()).toEqual([...parameters].sort());
    for (const [name, reference] of whole) {
      const values = split.get(name) as Float32Array;
      const scale = Math.max(...reference.map(Math.abs));
      const worst = Math.max(...values.map((v, i) => Math.abs(v - (reference[i] as number))));
      // float32 sums in different orders; equal weights per batch would be off by ~10% of the scale.
      expect(worst, name).toBeLessThan(1e-4 * scale);
    }
  });
});
