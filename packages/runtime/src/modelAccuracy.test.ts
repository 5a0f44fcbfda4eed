import { readFile } from 'node:fs/promises';
import { OnnxModel } from '@open-autoglm/onnx';
import { describe, expect, it } from 'vitest';
import { loadDataset } from './dataset.js';
import { modelAccuracy } from './modelAccuracy.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;

describe('modelAccuracy', () => {
  it("should give the manifest's onnxruntime accuracy for a model and for its bytes", async () => {
    const manifest = JSON.parse(await readFile(fixture('manifest.json'), 'utf8')) as {
      models: Record<string, { accuracy: { onnxruntime_eval: number } }>;
    };
    const expected = manifest.models['lenet5-fmnist']?.accuracy.onnxruntime_eval;
    const validation = await loadDataset({ x: fixture('fmnist-val-2k.x.npy'), y: fixture('fmnist-val-2k.y.npy') });
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    expect(await modelAccuracy(model, validation)).toBe(expected);
    expect(await modelAccuracy(model.toBytes(), validation, { device: 'cpu', threads: 1 }, { batch: 7 })).toBe(expected);
  });
});
