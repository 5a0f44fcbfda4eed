import 'reflect-metadata';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandToken, type Pass, PassToken, PluginRegistry, type PassContext, type Dataset as SplitData, silentLogger } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { OnnxModel } from '@open-autoglm/onnx';
import { createSession, evaluateAccuracy, loadDataset } from '@open-autoglm/runtime';
import { container } from 'tsyringe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import plugin, { distillerOptionsSchema } from './index.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const lenetFile = path.join(fixtures, 'lenet5-fmnist.onnx');

function resolve(options: unknown): { pass: Pass } {
  const registry = new PluginRegistry(container.createChildContainer());
  registry.add(plugin, options);
  return { pass: registry.resolve(plugin, PassToken) };
}

/** A split as the pipeline hands it over: where its files are (the pass reads them itself). */
function split(x: string, y?: string): SplitData {
  return {
    source: { x, ...(y === undefined ? {} : { y }) },
    size: 0,
    slice: () => Promise.reject(new Error('the pass reads the files itself')),
  };
}

describe('distiller-kd plugin', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('../package.json', import.meta.url),
    validConfig: { temperature: [2, 4], alpha: 0.7, learningRate: { min: 1e-4, max: 1e-2, log: true }, steps: { min: 20, max: 200 }, features: 'auto' },
  });

  let workDir: string;
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'autoglm-distiller-'));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it('should offer temperature, alpha, learning rate and a step budget to the search, and nothing fixed', async () => {
    const { pass } = resolve({ temperature: [2, 4], steps: { min: 20, max: 200, step: 20 } });
    const artifact = { path: lenetFile, bytes: new Uint8Array(await readFile(lenetFile)) };
    const space = await pass.searchSpace(artifact, {} as PassContext);
    expect(space.map((p) => [p.name, p.distribution])).toEqual([
      ['temperature', { kind: 'categorical', choices: [2, 4] }],
      ['alpha', { kind: 'float', low: 0.5, high: 1 }],
      ['learningRate', { kind: 'float', low: 1e-4, high: 1e-2, log: true }],
      ['steps', { kind: 'int', low: 20, high: 200, step: 20 }],
    ]);
    const fixed = resolve({ temperature: 4, alpha: 0.9, learningRate: 1e-3 }).pass;
    expect(await fixed.searchSpace(artifact, {} as PassContext)).toEqual([]);
  });

  it('should take augmentation options and refuse a cached teacher with them', () => {
    expect(distillerOptionsSchema.parse({ augmentation: { translate: 2, flip: true } })).toMatchObject({ augmentation: { translate: 2, flip: true } });
    expect(distillerOptionsSchema.parse({ augmentation: { flip: false }, teacherCache: 'memory' }).teacherCache).toBe('memory');
    const cached = distillerOptionsSchema.safeParse({ augmentation: { translate: 2 }, teacherCache: 'disk' });
    expect(cached.success).toBe(false);
    expect(cached.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['teacherCache', "the teacher's outputs cannot be cached with augmentation (every epoch feeds new inputs): use teacherCache none, or leave it unset"],
    ]);
    expect(distillerOptionsSchema.safeParse({ augmentation: { translate: -1 } }).success).toBe(false);
    expect(distillerOptionsSchema.safeParse({ augmentation: { rotate: 10 } }).success).toBe(false);
  });

  it('should provide the distill command', () => {
    const registry = new PluginRegistry(container.createChildContainer());
    registry.add(plugin, {});
    const command = registry.resolve(plugin, CommandToken);
    expect(command.name).toBe('distill');
    expect(command.options.filter((o) => o.required === true).map((o) => o.flags.split(' ')[0])).toEqual(['--teacher', '--student', '--data', '--out']);
  });

  it('should distill the trial model from the run\'s original on the train split and validate on val', async () => {
    const { pass } = resolve({ temperature: 4, alpha: 0.9, learningRate: 2e-3, steps: { min: 5, max: 50 }, batchSize: 32 });
    const bytes = new Uint8Array(await readFile(lenetFile));
    const context: PassContext = {
      logger: silentLogger,
      target: { device: 'cpu', threads: 1, batch: 1 },
      original: { path: lenetFile, bytes },
      datasets: {
        train: split(path.join(fixtures, 'fmnist-calib.x.npy'), path.join(fixtures, 'fmnist-calib.y.npy')),
        val: split(path.join(fixtures, 'fmnist-val-2k.x.npy'), path.join(fixtures, 'fmnist-val-2k.y.npy')),
      },
      workDir,
      seed: 1,
    };
    const result = await pass.apply({ path: lenetFile, bytes }, { steps: 10 }, context);
    expect(result.report).toMatchObject({ steps: 10, stop: 'step-budget', alpha: 0.9, temperature: 4, labelled: true, bestEpoch: null });
    expect(result.model.path).toBe(path.join(workDir, 'distilled.onnx'));
    const saved = await OnnxModel.load(result.model.path);
    expect(saved.problems()).toEqual([]);
    // The teacher is the student here: ten small updates keep it close to the original's accuracy.
    const session = await createSession(result.model.bytes, { device: 'cpu', threads: 1 });
    try {
      const val = await loadDataset({ x: path.join(fixtures, 'fmnist-val-2k.x.npy'), y: path.join(fixtures, 'fmnist-val-2k.y.npy') });
      const accuracy = (await evaluateAccuracy(session, val)).accuracy;
      expect(accuracy).toBe(result.report.validationAccuracy);
      expect(accuracy).toBeGreaterThan(0.85);
    } finally {
      await session.release();
    }
  });

  it('should pass its augmentation to the run and report it', async () => {
    const { pass } = resolve({ temperature: 2, alpha: 0.5, learningRate: 1e-3, steps: 2, batchSize: 16, augmentation: { translate: 2, flip: true } });
    const bytes = new Uint8Array(await readFile(lenetFile));
    const context: PassContext = {
      logger: silentLogger,
      target: { device: 'cpu', threads: 1, batch: 1 },
      original: { path: lenetFile, bytes },
      datasets: { train: split(path.join(fixtures, 'fmnist-calib.x.npy'), path.join(fixtures, 'fmnist-calib.y.npy')) },
      workDir,
      seed: 1,
    };
    const result = await pass.apply({ path: lenetFile, bytes }, {}, context);
    expect(result.report).toMatchObject({ steps: 2, stop: 'step-budget', augmentation: { translate: 2, flip: true } });
    // It reaches the Trainer: a shift as large as LeNet's 28x28 input is refused there.
    const tooFar = resolve({ temperature: 2, alpha: 0.5, learningRate: 1e-3, steps: 2, augmentation: { translate: 28 } }).pass;
    await expect(tooFar.apply({ path: lenetFile, bytes }, {}, context)).rejects.toThrow(/translate 28 shifts .* 28x28 pixels/);
  });
});
