import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { container } from 'tsyringe';
import { afterAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import type { Pass } from '../contracts/Pass.js';
import type { Logger } from '../contracts/Logger.js';
import { LoggerToken, PassToken, StrategyToken } from '../plugin/coreTokens.js';
import { createToken } from '../plugin/createToken.js';
import { definePlugin, type Plugin } from '../plugin/definePlugin.js';
import { registerFactory, registerValue, resolveToken } from '../plugin/tokenBindings.js';
import { checkPluginConformance, pluginConformanceChecks, runPluginConformance } from './index.js';

// The package.json is written while the file is collected, because runPluginConformance
// declares its tests then.
const packageDirectory = mkdtempSync(path.join(os.tmpdir(), 'autoglm-conformance-'));
const packageJsonPath = path.join(packageDirectory, 'package.json');
writeFileSync(packageJsonPath, JSON.stringify({ name: '@acme/autoglm-pruner', version: '1.4.0' }));
afterAll(() => rmSync(packageDirectory, { recursive: true, force: true }));

const options = z.strictObject({ ratio: z.number().min(0).max(1), criterion: z.enum(['l1', 'l2']).default('l1') });
const validConfig = { ratio: 0.3 };

function pass(): Pass {
  return { searchSpace: async () => [], apply: async (model) => ({ model, report: {} }) };
}

function pruner(overrides: Partial<Parameters<typeof definePlugin<z.output<typeof options>>>[0]> = {}): Plugin {
  return definePlugin({
    name: '@acme/autoglm-pruner',
    version: '1.4.0',
    provides: [PassToken],
    configSchema: options,
    register: (child, config) =>
      registerFactory(child, PassToken, (resolving) => {
        resolveToken(resolving, LoggerToken).debug('pruner created', { ratio: config.ratio });
        return pass();
      }),
    ...overrides,
  }) as Plugin;
}

/** The titles of the checks a plugin fails, with the start of each message. */
async function failuresOf(plugin: Plugin, config: Record<string, unknown> = validConfig): Promise<string[]> {
  const results = await checkPluginConformance(plugin, { packageJsonPath, validConfig: config });
  expect(results.map((result) => result.title)).toEqual(pluginConformanceChecks.map((check) => check.title));
  return results.filter((result) => result.error !== undefined).map((result) => `${result.title}: ${(result.error as Error).message}`);
}

describe('runPluginConformance', () => {
  describe('on a conforming plugin', () => {
    runPluginConformance(pruner(), { packageJsonPath, validConfig });
  });

  describe('with a root binding the plugin needs', () => {
    const clockToken = createToken<() => number>('test.clock');
    const clockedPlugin = definePlugin({
      name: '@acme/autoglm-pruner',
      version: '1.4.0',
      provides: [PassToken],
      configSchema: options,
      register: (child) =>
        registerFactory(child, PassToken, (resolving) => {
          resolveToken(resolving, clockToken)();
          return pass();
        }),
    });
    runPluginConformance(clockedPlugin as Plugin, {
      packageJsonPath: pathToFileURL(packageJsonPath),
      validConfig,
      bindRoot: (root) => registerValue(root, clockToken, () => 0),
    });
  });
});

describe('checkPluginConformance', () => {
  it('should pass a conforming plugin on every check', async () => {
    expect(await failuresOf(pruner())).toEqual([]);
  });

  it('should fail a plugin whose version differs from its package.json', async () => {
    expect(await failuresOf(pruner({ version: '1.3.0' }))).toEqual([
      `have the name and version of its package.json: Plugin @acme/autoglm-pruner@1.3.0 does not match ${packageJsonPath} ` +
        "(@acme/autoglm-pruner@1.4.0): definePlugin's name and version must equal the package.json's.",
    ]);
  });

  it('should fail a schema that ignores unknown keys', async () => {
    const failures = await failuresOf(pruner({ configSchema: z.object({ ratio: z.number(), criterion: z.enum(['l1', 'l2']).default('l1') }) }));
    expect(failures).toEqual([
      'reject unknown option keys: Plugin @acme/autoglm-pruner\'s configSchema does not reject the unknown key "conformanceCheckUnknownKey": ' +
        'build it with z.strictObject so that a misspelt option in `with:` is reported instead of ignored.',
    ]);
  });

  it('should fail when the example options are invalid', async () => {
    const failures = await failuresOf(pruner(), { ratio: 3 });
    expect(failures[0]).toBe(
      'accept the valid example options: Invalid options for plugin @acme/autoglm-pruner:\n' +
        "  ratio: expected a number <= 1, got 3\nFix these options; the plugin's README lists what it accepts.",
    );
    // Registration validates the options too, so the registry checks fail with them.
    expect(failures).toHaveLength(5);
  });

  it('should fail a plugin that does not bind what it provides', async () => {
    const failures = await failuresOf(pruner({ provides: [PassToken, StrategyToken] }));
    expect(failures).toHaveLength(4);
    expect(failures[0]).toMatch(
      /^bind every provided token on a fresh child container: plugin @acme\/autoglm-pruner declares that it provides core\.strategy but its register\(\) did not bind it/,
    );
  });

  it('should fail a plugin that registers on the global container', async () => {
    const sneakyToken = createToken<number>('test.sneaky');
    const sneaky = pruner({
      register: (child) => {
        registerValue(container, sneakyToken, 1);
        registerValue(child, PassToken, pass());
      },
    });
    try {
      expect(await failuresOf(sneaky)).toEqual([
        "not touch tsyringe's global container: Plugin @acme/autoglm-pruner registered on tsyringe's global container: " +
          'register(Symbol(test.sneaky)). Bind only on the container register() receives (no @singleton, @registry or container.register).',
      ]);
    } finally {
      container.reset();
    }
  });

  it("should restore the global container's methods after checking", async () => {
    const register = container.register;
    await checkPluginConformance(pruner(), { packageJsonPath, validConfig });
    expect(container.register).toBe(register);
    expect(Object.prototype.hasOwnProperty.call(container, 'register')).toBe(false);
  });

  it('should fail something that is not a plugin on every check', async () => {
    const imitation = { name: '@acme/autoglm-pruner', version: '1.4.0', provides: [], configSchema: options, register: () => {} };
    const failures = await failuresOf(imitation as unknown as Plugin);
    expect(failures[0]).toMatch(/^be a plugin made by definePlugin: The value under test is not a plugin made by definePlugin/);
    expect(failures.length).toBeGreaterThanOrEqual(4);
  });

  it('should let bindRoot replace the silent logger bound on the root', async () => {
    const messages: string[] = [];
    const loud: Logger = { debug: (m) => messages.push(m), info: () => {}, warn: () => {}, error: () => {} };
    const results = await checkPluginConformance(pruner(), {
      packageJsonPath,
      validConfig,
      bindRoot: (root) => registerValue(root, LoggerToken, loud),
    });
    expect(results.every((result) => result.error === undefined)).toBe(true);
    expect(messages).toContain('pruner created');
  });
});
