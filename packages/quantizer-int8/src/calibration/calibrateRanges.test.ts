import { ConfigError, DatasetError } from '@open-autoglm/core';
import { DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel } from '@open-autoglm/onnx';
import { collectMinMax, Dataset, loadDataset } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { fixture } from '../test-support/fixtures.js';
import { CALIBRATION_METHODS, calibrateRanges } from './calibrateRanges.js';
import { Histogram } from './Histogram.js';

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

  it('should refuse NaN or Inf in the calibration data, naming the sample, for every method', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist.onnx'));
    const clean = (await loadDataset({ x: fixture('fmnist-calib.x.npy') })).slice(0, 4);
    const name = model.graph.nodes[0]?.output[0] as string;
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const array = clean.feature('x');
      const data = Float32Array.from(array.data as Float32Array);
      data[2 * 784 + 100] = bad;
      const dataset = new Dataset(new Map([['x', { ...array, data }]]), undefined);
      for (const method of CALIBRATION_METHODS) {
        await expect(calibrateRanges(model, [name], dataset, { method }), `${bad} ${method}`).rejects.toThrow(DatasetError);
        await expect(calibrateRanges(model, [name], dataset, { method })).rejects.toThrow(new RegExp(`holds ${bad} in sample 2`));
      }
    }
  });

  it('should refuse a NaN the model computes from finite inputs with every method (min and max reductions skip it)', async () => {
    // log(x) of a negative x: NaN inside the model.
    const model = new OnnxModel(
      makeModel({
        name: 'log',
        node: [makeNode('Log', ['x'], ['l'], {}, 'log'), makeNode('Relu', ['l'], ['y'], {}, 'relu')],
        input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 4])],
        output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 4])],
      }),
    );
    const data = Float32Array.from([1, 2, 3, 4, 0.5, -1, 2, 8]);
    const dataset = new Dataset(new Map([['x', { dtype: 'float32' as const, shape: [2, 4], data, file: undefined }]]), undefined);
    for (const method of CALIBRATION_METHODS) {
      await expect(calibrateRanges(model, ['l'], dataset, { method }), method).rejects.toThrow(DatasetError);
      await expect(calibrateRanges(model, ['l'], dataset, { method }), method).rejects.toThrow(/non-finite value \(NaN or Inf\) in tensor "l" .* on calibration samples 0-1\./);
    }
  });
});

describe('Histogram', () => {
  it('should leave NaN out of the bins and the total, and put a constant in one bin', () => {
    const histogram = new Histogram(0, 4, 4);
    histogram.add([0.5, Number.NaN, 3.5, 9, -1]);
    expect(Array.from(histogram.counts)).toEqual([2, 0, 0, 2]);
    expect([histogram.total, histogram.nan]).toEqual([4, 1]);
    const constant = new Histogram(2, 2, 8);
    constant.add([2, 2, 2]);
    expect(constant.counts[0]).toBe(3);
  });
});
