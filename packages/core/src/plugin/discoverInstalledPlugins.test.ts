import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { EvaluatorToken, PassToken } from './coreTokens.js';
import { definePlugin } from './definePlugin.js';
import { discoverInstalledPlugins, pluginPackageKeyword } from './discoverInstalledPlugins.js';

// Fixture modules on disk hand out plugins made here, so that no build of core is needed.
const fixturePlugins = new Map<string, unknown>();
(globalThis as Record<symbol, unknown>)[Symbol.for('open-autoglm.test.discovered-plugins')] = fixturePlugins;

async function writePackage(nodeModules: string, name: string, manifest: Record<string, unknown>, source?: string): Promise<void> {
  const directory = path.join(nodeModules, name);
  await mkdir(directory, { recursive: true });
  await writeFile(path.join(directory, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', ...manifest }));
  await writeFile(
    path.join(directory, 'index.js'),
    source ?? `export default globalThis[Symbol.for('open-autoglm.test.discovered-plugins')].get(${JSON.stringify(name)});\n`,
  );
}

describe('discoverInstalledPlugins', () => {
  let root: string;
  let project: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'autoglm-discover-'));
    project = path.join(root, 'project');
    const projectModules = path.join(project, 'node_modules');
    const outerModules = path.join(root, 'node_modules');
    const plugin = (name: string, version = '1.0.0') =>
      definePlugin({ name, version, provides: [PassToken], configSchema: z.strictObject({}), register: () => {} });

    fixturePlugins.set('@open-autoglm/quantizer-int8', plugin('@open-autoglm/quantizer-int8'));
    await writePackage(projectModules, '@open-autoglm/quantizer-int8', {});
    fixturePlugins.set('@acme/f1-evaluator', { ...plugin('@acme/f1-evaluator') }); // a copy, not the plugin
    fixturePlugins.set(
      'autoglm-plugin-f1',
      definePlugin({ name: 'autoglm-plugin-f1', version: '1.0.0', provides: [EvaluatorToken], configSchema: z.strictObject({}), register: () => {} }),
    );
    await writePackage(projectModules, 'autoglm-plugin-f1', { keywords: ['onnx', pluginPackageKeyword] });
    // Declares itself a plugin but is not one: reported.
    await writePackage(projectModules, '@acme/f1-evaluator', { keywords: [pluginPackageKeyword] });
    // First-party but not a plugin (like core itself): skipped quietly.
    await writePackage(projectModules, '@open-autoglm/core', {}, 'export const version = "1.0.0";\n');
    // Neither scoped nor declared: never imported.
    await writePackage(projectModules, 'left-pad', {}, 'throw new Error("must not be imported");\n');
    // Further up, the nearest copy wins.
    fixturePlugins.set('autoglm-plugin-outer', plugin('autoglm-plugin-outer'));
    await writePackage(outerModules, 'autoglm-plugin-outer', { keywords: [pluginPackageKeyword] });
    await writePackage(outerModules, '@open-autoglm/quantizer-int8', {}, 'throw new Error("the nearer copy must win");\n');
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('should list first-party and keyword plugins from node_modules here and above', async () => {
    const { plugins } = await discoverInstalledPlugins(project);
    expect(plugins.map(({ packageName, plugin }) => [packageName, plugin.name])).toEqual([
      ['@open-autoglm/quantizer-int8', '@open-autoglm/quantizer-int8'],
      ['autoglm-plugin-f1', 'autoglm-plugin-f1'],
      ['autoglm-plugin-outer', 'autoglm-plugin-outer'],
    ]);
    expect(plugins[0]?.directory).toBe(path.join(project, 'node_modules', '@open-autoglm', 'quantizer-int8'));
    expect(plugins[0]?.plugin).toBe(fixturePlugins.get('@open-autoglm/quantizer-int8'));
  });

  it('should report packages that declare the keyword but do not load as plugins', async () => {
    const { failures } = await discoverInstalledPlugins(project);
    expect(failures.map((failure) => failure.packageName)).toEqual(['@acme/f1-evaluator']);
    expect(failures[0]?.error.message).toMatch(/does not default-export a plugin/);
  });

  it('should find nothing where there is no node_modules', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'autoglm-empty-'));
    try {
      const { plugins, failures } = await discoverInstalledPlugins(empty);
      expect(plugins.filter((found) => found.directory.startsWith(empty))).toEqual([]);
      expect(failures.filter((failure) => failure.directory.startsWith(empty))).toEqual([]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
