import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommandToken, type Pass, PassToken, PluginRegistry, type PassContext, type Dataset as SplitData, silentLogger, searchSpaceSchema } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { OnnxModel } from '@open-autoglm/onnx';
import { container } from 'tsyringe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin from './index.js';
import { fixture } from './test-support/fixtures.js';

function resolvePass(options: unknown): Pass {
  const registry = new PluginRegistry(container.createChildContainer());
  registry.add(plugin, options);
  return registry.resolve(plugin, PassToken);
}

/** A split as the pipeline hands it over: where its files are (the pass reads them itself). */
function split(x: string): SplitData {
  return { source: { x }, size: 0, slice: () => Promise.reject(new Error('the pass reads the files itself')) };
}

describe('quantizer-int8 plugin', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('../package.json', import.meta.url),
    validConfig: { calibration: ['minmax', 'percentile', 'entropy'], perChannel: true, perLayer: true },
  });

  let workDir: string;
  let context: PassContext;
  let artifact: { path: string; bytes: Uint8Array };
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'autoglm-quantizer-plugin-'));
    const file = fixture('resnet8-fmnist.onnx');
    artifact = { path: file, bytes: (await OnnxModel.load(file)).toBytes() };
    context = {
      logger: silentLogger,
      target: { device: 'cpu', threads: 1, batch: 1 },
      original: artifact,
      datasets: { calib: split(fixture('fmnist-calib.x.npy')) },
      workDir,
      seed: 0,
    };
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('should provide the quantize command', () => {
    const registry = new PluginRegistry(container.createChildContainer());
    registry.add(plugin, {});
    expect(registry.resolve(plugin, CommandToken).name).toBe('quantize');
  });

  it('should offer the calibration method and an int8/float choice per layer with its features', async () => {
    const pass = resolvePass({ calibration: ['minmax', 'percentile'], perLayer: true });
    const space = await pass.searchSpace(artifact, context);
    expect(searchSpaceSchema.safeParse(space).success).toBe(true);
    expect(space[0]).toMatchObject({ name: 'calibration', distribution: { kind: 'categorical', choices: ['minmax', 'percentile'] } });
    const layers = space.slice(1);
    // 9 Conv, 3 Add, GlobalAveragePool, Gemm.
    expect(layers).toHaveLength(14);
    expect(layers[0]).toMatchObject({
      name: 'int8./conv1/Conv',
      layer: '/conv1/Conv',
      distribution: { kind: 'categorical', choices: ['int8', 'float'] },
      features: { index: 0, opType: 'Conv', inChannels: 1, outChannels: 16, kernel: 9, stride: 1, macs: 16 * 9 * 28 * 28 },
    });
    expect(layers.find((p) => p.layer === '/fc/Gemm')?.features).toMatchObject({ opType: 'Gemm', inChannels: 64, outChannels: 10, kernel: 1 });
    expect(await resolvePass({}).searchSpace(artifact, context)).toEqual([]);
  });

  it('should apply the chosen method and keep the layers chosen as float in float', async () => {
    const pass = resolvePass({ calibration: ['minmax', 'percentile'], perLayer: true, calibrationSamples: 64 });
    const result = await pass.apply(artifact, { calibration: 'percentile', 'int8./conv1/Conv': 'float', 'int8./fc/Gemm': 'int8' }, context);
    expect(result.report).toMatchObject({ mode: 'static', calibration: 'percentile', floatLayers: ['/conv1/Conv'] });
    const model = OnnxModel.fromBytes(result.model.bytes);
    const conv1 = model.graph.nodes.find((n) => n.name === '/conv1/Conv');
    expect(model.graph.isConstant(conv1?.input[1] ?? '')).toBe(true);
    const conv2 = model.graph.nodes.find((n) => n.name === '/layer1/conv1/Conv');
    expect(model.graph.producerOf(conv2?.input[1] ?? '')?.opType).toBe('DequantizeLinear');
    expect(result.model.path).toBe(path.join(workDir, 'quantized.onnx'));
  });

  it('should ask for a calibration split in static mode', async () => {
    await expect(resolvePass({}).apply(artifact, {}, { ...context, datasets: {} })).rejects.toThrow(/data\.calib/);
  });
});
