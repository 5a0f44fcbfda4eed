import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { CommandToken, type Pass, type PassContext, PassToken, PluginRegistry, searchSpaceSchema, silentLogger } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { countModelStats, OnnxModel } from '@open-autoglm/onnx';
import { npyDatasetLoader } from '@open-autoglm/runtime';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import plugin, { prunerOptionsSchema } from './index.js';
import { fixturePath } from './test-support/pruningModels.js';

function resolve(options: unknown): Pass {
  const registry = new PluginRegistry(container.createChildContainer());
  registry.add(plugin, options);
  return registry.resolve(plugin, PassToken);
}

async function artifact(name: string): Promise<{ path: string; bytes: Uint8Array }> {
  const file = fixturePath(`${name}.onnx`);
  return { path: file, bytes: new Uint8Array(await readFile(file)) };
}

async function contextWith(calib?: { x: string; y?: string }): Promise<PassContext> {
  const datasets = calib === undefined ? {} : { calib: await npyDatasetLoader.load(calib) };
  return { logger: silentLogger, datasets, workDir: '/nonexistent-work-dir', seed: 3 } as unknown as PassContext;
}

describe('pruner-structured plugin', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('../package.json', import.meta.url),
    validConfig: { criterion: 'fpgm', ratio: { min: 0, max: 0.6, step: 0.05 }, perLayer: true, roundTo: 4, protect: ['/conv1/Conv'] },
  });

  it('should provide the pass and the prune command with default options', () => {
    const registry = new PluginRegistry(container.createChildContainer());
    registry.add(plugin, {});
    expect(registry.resolve(plugin, CommandToken).name).toBe('prune');
    expect(registry.resolve(plugin, PassToken)).toBeDefined();
  });

  it('should offer one ratio per prunable group with the layer and its features', async () => {
    const space = await resolve({}).searchSpace(await artifact('resnet8-fmnist'), await contextWith());
    expect(() => searchSpaceSchema.parse(space.map(({ features: _features, ...rest }) => rest))).not.toThrow();
    expect(space.map((p) => p.name)).toEqual([
      'ratio./conv1/Conv',
      'ratio./layer1/conv1/Conv',
      'ratio./layer2/conv1/Conv',
      'ratio./layer2/conv2/Conv',
      'ratio./layer3/conv1/Conv',
      'ratio./layer3/conv2/Conv',
    ]);
    expect(space[3]).toMatchObject({
      layer: '/layer2/conv2/Conv',
      distribution: { kind: 'float', low: 0, high: 0.7, step: 0.05 },
      features: { index: 4, opType: 'Conv', inChannels: 32, outChannels: 32, kernel: 9, stride: 1 },
    });
    const lenet = await resolve({}).searchSpace(await artifact('lenet5-fmnist'), await contextWith());
    // conv1 has 6 channels: at the default roundTo 8 it can only stay whole, so it is not offered.
    expect(lenet.map((p) => p.name)).toEqual(['ratio./conv2/Conv', 'ratio./fc1/Gemm', 'ratio./fc2/Gemm']);
    const global = await resolve({ perLayer: false, ratio: { min: 0.1, max: 0.5 } }).searchSpace(await artifact('resnet8-fmnist'), await contextWith());
    // A range given without a step keeps the default grid of 0.05.
    expect(global).toEqual([expect.objectContaining({ name: 'ratio', distribution: { kind: 'float', low: 0.1, high: 0.5, step: 0.05 } })]);
  });

  it('should leave groups at or below the minUnits floor out of the search space', async () => {
    const space = await resolve({ minUnits: 16 }).searchSpace(await artifact('resnet8-fmnist'), await contextWith());
    // resnet8's 28x28 stage has 16 channels: a floor of 16 keeps both of its groups whole.
    expect(space.map((p) => p.name)).toEqual(['ratio./layer2/conv1/Conv', 'ratio./layer2/conv2/Conv', 'ratio./layer3/conv1/Conv', 'ratio./layer3/conv2/Conv']);
  });

  it('should keep the default ratio step when a range omits it, and reject a step that does not divide the range', () => {
    expect(prunerOptionsSchema.parse({ ratio: { max: 0.5 } }).ratio).toEqual({ min: 0, max: 0.5, step: 0.05 });
    expect(prunerOptionsSchema.parse({ ratio: { min: 0.2, max: 0.5, step: 0.1 } }).ratio).toEqual({ min: 0.2, max: 0.5, step: 0.1 });
    const uneven = prunerOptionsSchema.safeParse({ ratio: { max: 0.33 } });
    expect(uneven.success).toBe(false);
    expect(uneven.error?.issues).toEqual([expect.objectContaining({ path: ['ratio', 'step'], message: expect.stringMatching(/divides high - low.*step is 0.05 \(the default\)/) })]);
    expect(prunerOptionsSchema.safeParse({ ratio: { min: 0.5, max: 0.2 } }).error?.issues).toEqual([expect.objectContaining({ path: ['ratio', 'max'], message: 'expected min <= max' })]);
  });

  it('should predict exactly the cost of what apply builds, and re-estimate BatchNorm on the calibration split', async () => {
    const pass = resolve({ calibrationSamples: 128 });
    const model = await artifact('vgg11bn-mnist');
    const context = await contextWith({ x: fixturePath('mnist-calib.x.npy') });
    const space = await pass.searchSpace(model, context);
    const params = Object.fromEntries(space.map((p, i) => [p.name, [0.5, 0.25, 0.7][i % 3] as number]));
    const predicted = await pass.predictCost?.(model, params, context);
    const result = await pass.apply(model, params, context);
    const counted = countModelStats(OnnxModel.fromBytes(result.model.bytes).proto);
    expect(predicted).toEqual({ params: counted.params, macs: counted.macs });
    expect(result.model.path).toBe('/nonexistent-work-dir/pruned.onnx');
    expect(result.report).toMatchObject({ criterion: 'l1', actual: predicted, predicted });
    expect((result.report.recalibratedBatchNorms as string[]).length).toBe(8);
    expect(Buffer.from(model.bytes).equals(await readFile(fixturePath('vgg11bn-mnist.onnx')))).toBe(true);
  });

  it('should rank with Taylor importance from the labelled calibration split', async () => {
    const pass = resolve({ criterion: 'taylor', perLayer: false, calibrationSamples: 128, recalibrate: false });
    const model = await artifact('lenet5-fmnist');
    const context = await contextWith({ x: fixturePath('fmnist-calib.x.npy'), y: fixturePath('fmnist-calib.y.npy') });
    const predicted = await pass.predictCost?.(model, { ratio: 0.4 }, context);
    const result = await pass.apply(model, { ratio: 0.4 }, context);
    expect(result.report).toMatchObject({ criterion: 'taylor', actual: predicted });
    await expect(resolve({ criterion: 'taylor' }).apply(model, { 'ratio./conv2/Conv': 0.4 }, await contextWith())).rejects.toThrow(/needs labelled calibration data/);
  });

  it('should refit the layers reading removed channels when reconstruct is on, instead of re-estimating BatchNorm, and need the calibration split for it', async () => {
    const pass = resolve({ perLayer: false, reconstruct: true, calibrationSamples: 600 });
    const model = await artifact('lenet5-fmnist');
    const result = await pass.apply(model, { ratio: 0.5 }, await contextWith({ x: fixturePath('fmnist-calib.x.npy') }));
    const reconstructed = result.report.reconstructed as Array<{ errorBefore: number; errorAfter: number }>;
    expect(reconstructed.length).toBeGreaterThan(0);
    for (const layer of reconstructed) expect(layer.errorAfter).toBeLessThan(layer.errorBefore);
    expect(result.report.recalibratedBatchNorms).toEqual([]);
    await expect(pass.apply(model, { ratio: 0.5 }, await contextWith())).rejects.toThrow(/reconstruct option of pruner-structured .* add data.calib/);
  });

  it("should predict a global random plan with the trial's seed, as apply prunes it", async () => {
    const pass = resolve({ criterion: 'random', perLayer: false, roundTo: 1 });
    const model = await artifact('lenet5-fmnist');
    const context = await contextWith();
    const result = await pass.apply(model, { ratio: 0.5 }, context);
    expect(await pass.predictCost?.(model, { ratio: 0.5 }, context)).toEqual(result.report.actual);
  });

  it('should reject parameters it does not have and ratios outside [0, 1)', async () => {
    const pass = resolve({});
    const model = await artifact('lenet5-fmnist');
    await expect(pass.apply(model, { 'ratio./conv7/Conv': 0.5 }, await contextWith())).rejects.toThrow(/"\/conv7\/Conv"/);
    await expect(pass.apply(model, { width: 0.5 }, await contextWith())).rejects.toThrow(/has no parameter "width"/);
    await expect(pass.predictCost?.(model, { ratio: 1.5 }, await contextWith())).rejects.toThrow(/\[0, 1\)/);
  });
});
