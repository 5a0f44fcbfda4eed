import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { PluginError } from '../errors/errors.js';
import { PassToken } from './coreTokens.js';
import { definePlugin, type Plugin } from './definePlugin.js';
import { loadPlugin } from './loadPlugin.js';

// Fixture modules on disk hand out plugins made here, so that no build of core is needed.
const fixturePlugins = new Map<string, unknown>();
(globalThis as Record<symbol, unknown>)[Symbol.for('open-autoglm.test.fixture-plugins')] = fixturePlugins;

function fixtureModule(key: string): string {
  return `export default globalThis[Symbol.for('open-autoglm.test.fixture-plugins')].get(${JSON.stringify(key)});\n`;
}

function makePlugin(name: string, version = '1.0.0'): Plugin {
  return definePlugin({ name, version, provides: [PassToken], configSchema: z.strictObject({}), register: () => {} });
}

/** Writes a package with an ESM entry that default-exports the fixture plugin `key`. */
async function writePackage(
  directory: string,
  manifest: Record<string, unknown>,
  entry: { file: string; key?: string; source?: string } = { file: 'index.js' },
): Promise<void> {
  await mkdir(path.dirname(path.join(directory, entry.file)), { recursive: true });
  await writeFile(path.join(directory, 'package.json'), JSON.stringify({ type: 'module', ...manifest }));
  await writeFile(path.join(directory, entry.file), entry.source ?? fixtureModule(entry.key ?? String(manifest.name)));
}

describe('loadPlugin', () => {
  let project: string;
  let configDir: string;
  const configFile = () => path.join(configDir, 'autoglm.yaml');

  beforeAll(async () => {
    project = await mkdtemp(path.join(os.tmpdir(), 'autoglm-plugins-'));
    configDir = path.join(project, 'configs');
    const modules = path.join(project, 'node_modules');

    fixturePlugins.set('@open-autoglm/quantizer-int8', makePlugin('@open-autoglm/quantizer-int8', '0.3.0'));
    await writePackage(
      path.join(modules, '@open-autoglm/quantizer-int8'),
      { name: '@open-autoglm/quantizer-int8', version: '0.3.0', exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } } },
      { file: 'dist/index.js' },
    );
    fixturePlugins.set('autoglm-plugin-sparse', makePlugin('autoglm-plugin-sparse'));
    await writePackage(path.join(modules, 'autoglm-plugin-sparse'), { name: 'autoglm-plugin-sparse', version: '1.0.0', main: 'lib/main.js' }, {
      file: 'lib/main.js',
      key: 'autoglm-plugin-sparse',
    });
    fixturePlugins.set('@acme/autoglm-evaluator', makePlugin('@acme/autoglm-evaluator', '2.1.0'));
    await writePackage(path.join(modules, '@acme/autoglm-evaluator'), { name: '@acme/autoglm-evaluator', version: '2.1.0', exports: './entry.js' }, {
      file: 'entry.js',
      key: '@acme/autoglm-evaluator',
    });
    fixturePlugins.set('mismatched', makePlugin('autoglm-plugin-mismatched', '9.9.9'));
    await writePackage(path.join(modules, 'autoglm-plugin-mismatched'), { name: 'autoglm-plugin-mismatched', version: '1.0.0' }, {
      file: 'index.js',
      key: 'mismatched',
    });
    await writePackage(path.join(modules, 'not-a-plugin'), { name: 'not-a-plugin', version: '1.0.0' }, {
      file: 'index.js',
      source: 'export default { name: "not-a-plugin" };\n',
    });
    await writePackage(path.join(modules, 'throws-on-import'), { name: 'throws-on-import', version: '1.0.0' }, {
      file: 'index.js',
      source: 'throw new Error("native binding missing");\n',
    });
    await writePackage(path.join(modules, 'unbuilt-plugin'), { name: 'unbuilt-plugin', version: '1.0.0', exports: { '.': './dist/index.js' } }, {
      file: 'src/index.js',
      source: '',
    });

    fixturePlugins.set('local', makePlugin('my-local-plugin'));
    await mkdir(path.join(configDir, 'plugins'), { recursive: true });
    await writeFile(path.join(configDir, 'plugins', 'local.mjs'), fixtureModule('local'));
    fixturePlugins.set('folder', makePlugin('my-folder-plugin', '0.0.1'));
    await writePackage(path.join(configDir, 'plugins', 'folder-plugin'), { name: 'my-folder-plugin', version: '0.0.1' }, {
      file: 'index.js',
      key: 'folder',
    });
  });

  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('should map a first-party short name to its @open-autoglm package', async () => {
    const plugin = await loadPlugin('quantizer-int8', { configDir, configFile: configFile() });
    expect(plugin).toBe(fixturePlugins.get('@open-autoglm/quantizer-int8'));
  });

  it('should import any other package name as is, from the config folder upwards', async () => {
    expect(await loadPlugin('autoglm-plugin-sparse', { configDir })).toBe(fixturePlugins.get('autoglm-plugin-sparse'));
    expect(await loadPlugin('@acme/autoglm-evaluator', { configDir })).toBe(fixturePlugins.get('@acme/autoglm-evaluator'));
    expect(await loadPlugin('@open-autoglm/quantizer-int8', { configDir })).toBe(fixturePlugins.get('@open-autoglm/quantizer-int8'));
  });

  it('should resolve a relative path from the config file’s folder', async () => {
    expect(await loadPlugin('./plugins/local.mjs', { configDir })).toBe(fixturePlugins.get('local'));
    expect(await loadPlugin('./plugins/folder-plugin', { configDir })).toBe(fixturePlugins.get('folder'));
    const url = pathToFileURL(path.join(configDir, 'plugins', 'local.mjs')).href;
    expect(await loadPlugin(url, { configDir: os.tmpdir() })).toBe(fixturePlugins.get('local'));
  });

  it('should look in the fallback folders when the config folder has no such package', async () => {
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'autoglm-elsewhere-'));
    try {
      await expect(loadPlugin('autoglm-plugin-sparse', { configDir: elsewhere, fallbackDirs: [] })).rejects.toThrow(/is not installed/);
      expect(await loadPlugin('autoglm-plugin-sparse', { configDir: elsewhere, fallbackDirs: [configDir] })).toBe(
        fixturePlugins.get('autoglm-plugin-sparse'),
      );
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('should give the install command for a missing package', async () => {
    // No fallback folders: the workspace this test runs in may have the package installed.
    const options = { configDir, configFile: configFile(), fallbackDirs: [] };
    await expect(loadPlugin('pruner-structured', options)).rejects.toThrow(PluginError);
    await expect(loadPlugin('pruner-structured', options)).rejects.toThrow(
      `Plugin package @open-autoglm/pruner-structured is not installed (needed by \`use: pruner-structured\` in ${configFile()}). ` +
        'Install it: npm install @open-autoglm/pruner-structured',
    );
    await expect(loadPlugin('quantiser-int8', { configDir, fallbackDirs: [] })).rejects.toThrow(
      /npm install quantiser-int8\nFirst-party plugins can be named by short name: pruner-structured, quantizer-int8/,
    );
  });

  it('should name the resolved path and the config file for a bad path', async () => {
    const missing = path.join(configDir, 'plugins', 'missing.js');
    await expect(loadPlugin('./plugins/missing.js', { configDir, configFile: configFile() })).rejects.toThrow(
      `Plugin file ${missing} does not exist (named by \`use: ./plugins/missing.js\` in ${configFile()}). ` +
        `A relative plugin path is resolved from the config file's folder (${configDir}); check the path.`,
    );
    await expect(loadPlugin('./plugins', { configDir })).rejects.toThrow(/has no package\.json/);
  });

  it('should reject a module whose default export is not a plugin', async () => {
    await expect(loadPlugin('not-a-plugin', { configDir })).rejects.toThrow(
      /not-a-plugin[\\/]index\.js \(named by `use: not-a-plugin`\) does not default-export a plugin\. .*export default definePlugin/,
    );
  });

  it('should reject a plugin whose name or version differs from its package.json', async () => {
    await expect(loadPlugin('autoglm-plugin-mismatched', { configDir })).rejects.toThrow(
      /Plugin autoglm-plugin-mismatched@9\.9\.9 does not match its package autoglm-plugin-mismatched@1\.0\.0/,
    );
  });

  it('should wrap an error thrown while importing, keeping it as the cause', async () => {
    const error = await loadPlugin('throws-on-import', { configDir }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).message).toMatch(/throws-on-import[\\/]index\.js .*failed to load: native binding missing\./);
    expect(((error as PluginError).cause as Error).message).toBe('native binding missing');
  });

  it('should say when a package’s entry file is missing', async () => {
    await expect(loadPlugin('unbuilt-plugin', { configDir })).rejects.toThrow(/Package unbuilt-plugin has no entry file .*dist[\\/]index\.js.*build it first/);
  });

  it('should refuse a specifier that is neither a name nor a path', async () => {
    await expect(loadPlugin('My Plugin', { configDir })).rejects.toThrow(/`use: My Plugin` names neither a plugin package nor a path/);
  });
});
