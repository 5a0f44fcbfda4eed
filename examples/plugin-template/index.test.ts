import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { container } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { PassToken, PluginRegistry, type PassContext, loadConfig, loadPlugin, silentLogger } from '@open-autoglm/core';
import { runPluginConformance } from '@open-autoglm/core/testing';
import { OnnxModel } from '@open-autoglm/onnx';
import { compareOutputs, createSession, loadDataset } from '@open-autoglm/runtime';
import plugin from './index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('plugin template (autoglm-plugin-fold-batchnorm)', () => {
  runPluginConformance(plugin, {
    packageJsonPath: new URL('./package.json', import.meta.url),
    validConfig: { removeDeadNodes: false },
  });

  it('should load from a YAML config by a path relative to the config file and fold BatchNorm', async () => {
    const loaded = await loadConfig(path.join(here, 'autoglm.yaml'));
    const use = loaded.config.passes[0];
    expect(use?.use).toBe('./index.js');
    const loadedPlugin = await loadPlugin(use?.use ?? '', { configDir: here, configFile: loaded.file });
    expect(loadedPlugin.name).toBe('autoglm-plugin-fold-batchnorm');

    const registry = new PluginRegistry(container.createChildContainer());
    registry.add(loadedPlugin, use?.with, { location: loaded.locationOf(['passes', 0, 'with']) });
    const pass = registry.resolve(loadedPlugin, PassToken);

    const modelPath = loaded.config.model;
    const original = { path: modelPath, bytes: new Uint8Array(await readFile(modelPath)) };
    const context: PassContext = {
      logger: silentLogger,
      target: { device: 'cpu', threads: 1, batch: 1 },
      original,
      datasets: {},
      workDir: here,
      seed: 0,
    };
    expect(await pass.searchSpace(original, context)).toEqual([]);
    const result = await pass.apply(original, {}, context);

    expect(result.report).toMatchObject({ folded: 2, notFolded: [] });
    expect(OnnxModel.fromBytes(result.model.bytes).graph.nodes.length).toBe(12);
    const val = loaded.config.data.val;
    if (val === undefined) throw new Error('the example config names a val split');
    const dataset = await loadDataset({ x: val.x });
    const target = { device: 'cpu', threads: 1 } as const;
    const before = await createSession(original.bytes, target);
    const after = await createSession(result.model.bytes, target);
    const comparison = await compareOutputs(before, after, dataset, { batch: 250 });
    await Promise.all([before.release(), after.release()]);
    expect(comparison.agreement).toBe(1);
    expect(comparison.maxAbsError).toBeLessThan(1e-4);
  });
});
