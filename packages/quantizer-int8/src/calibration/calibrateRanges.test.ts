import { ConfigError } from '@open-autoglm/core';
import { OnnxModel } from '@open-autoglm/onnx';
import { collectMinMax, loadDataset } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { fixture } from '../test-support/fixtures.js';
import { CALIBRATION_METHODS, calibrateRanges } from './calibrateRanges.js';

describe('calibrateRanges', () => {
  it('should give ranges inside the observed extremes for every method, MinMax equal to them', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const dataset = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 200);
    const tensors = model.graph.nodes.filter((n) => n.opType === 'Relu' || n.opType === 'Gemm').map((n) => n.output[0] as string);
    const reference = await collectMinMax(model, tensors, dataset);
    for (const method of CALIBRATION_METHODS) {
      const ranges = await calibrateRanges(model, tensors, dataset, { method, bins: 512 });
      for (const name of tensors) {
        const range = ranges.get(name);
        const seen = reference.get(name);
        expect(range?.observed.min, `${method} ${name}`).toBeCloseTo(seen?.min ?? Number.NaN, 5);
        expect(range?.observed.max, `${method} ${name}`).toBeCloseTo(seen?.max ?? Number.NaN, 5);
        expect(range?.min as number).toBeGreaterThanOrEqual((seen?.min as number) - 1e-6);
        expect(range?.max as number).toBeLessThanOrEqual((seen?.max as number) + 1e-6);
        if (method === 'minmax') expect(range?.max).toBe(range?.observed.max);
        else expect(range?.max as number).toBeGreaterThan(0);
      }
    }
  });

  it('should average per-batch extremes with movingAverage, inside the global extremes', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const dataset = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 320);
    const name = model.graph.nodes.find((n) => n.opType === 'Gemm')?.output[0] as string;
    const global = (await calibrateRanges(model, [name], dataset)).get(name);
    const averaged = (await calibrateRanges(model, [name], dataset, { movingAverage: 0.5 })).get(name);
    expect(averaged?.max as number).toBeLessThanOrEqual(global?.max as number);
    expect(averaged?.min as number).toBeGreaterThanOrEqual(global?.min as number);
    expect(averaged?.max).not.toBe(global?.max);
  });

  it('should refuse an unknown method and bad settings', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const dataset = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 8);
    const name = model.graph.nodes[0]?.output[0] as string;
    await expect(calibrateRanges(model, [name], dataset, { method: 'kl' as 'entropy' })).rejects.toThrow(ConfigError);
    await expect(calibrateRanges(model, [name], dataset, { percentile: 0 })).rejects.toThrow(/percentile/);
  });
});
