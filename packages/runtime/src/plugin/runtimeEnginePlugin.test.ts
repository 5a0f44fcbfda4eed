import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetLoaderToken, EvaluatorToken, ModelInspectorToken, PluginRegistry, TargetToken } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { createSession } from '../session.js';
import { evaluateAccuracy } from '../evaluateAccuracy.js';
import { loadDataset } from '../dataset.js';
import { runtimeEnginePlugin } from './runtimeEnginePlugin.js';

const quickstart = fileURLToPath(new URL('../../../../examples/quickstart/', import.meta.url));
const modelFile = path.join(quickstart, 'lenet5-fmnist.onnx');
const source = { x: path.join(quickstart, 'fmnist-val-500.x.npy'), y: path.join(quickstart, 'fmnist-val-500.y.npy') };

describe('runtimeEnginePlugin', () => {
  runPluginConformance(runtimeEnginePlugin, {
    packageJsonPath: new URL('../../package.json', import.meta.url),
    validConfig: { device: 'cpu', threads: 1, batch: 8, runs: 5 },
  });

  it('should read .npy splits, evaluate accuracy as evaluateAccuracy does, count params and time the per-call floor below the model', async () => {
    const registry = new PluginRegistry(container.createChildContainer());
    registry.add(runtimeEnginePlugin, { threads: 1, batch: 1, runs: 200, warmupRuns: 20 });
    const loader = registry.resolve(runtimeEnginePlugin, DatasetLoaderToken);
    expect(loader.canLoad(source)).toBe(true);
    expect(loader.canLoad({ x: 'images.csv' })).toBe(false);
    const dataset = await loader.load(source);
    const batch = await dataset.slice(498, 10);
    expect(batch.size).toBe(2);
    expect(batch.features['x']?.dims).toEqual([2, 1, 28, 28]);
    expect(batch.labels?.type).toBe('int64');

    const model = { path: modelFile, bytes: new Uint8Array(await readFile(modelFile)) };
    const engine = registry.resolve(runtimeEnginePlugin, EvaluatorToken);
    const target = registry.resolve(runtimeEnginePlugin, TargetToken);
    const { accuracy } = await engine.evaluate(model, { dataset, target: target.description, logger: { debug() {}, info() {}, warn() {}, error() {} } });
    const session = await createSession(modelFile, { device: 'cpu', threads: 1 });
    const reference = await evaluateAccuracy(session, await loadDataset(source));
    await session.release();
    expect(accuracy).toBe(reference.accuracy);

    const inspector = registry.resolve(runtimeEnginePlugin, ModelInspectorToken);
    // fixtures/manifest.json: LeNet-5 has 61,728 parameters.
    expect((await inspector.statistics(model)).params).toBe(61728);
    const floor = await inspector.measureCallFloor(model);
    const latency = await target.measureLatency(model);
    expect(floor.minMs).toBeGreaterThan(0);
    expect(floor.minMs).toBeLessThan(latency.minMs);
  });
});
