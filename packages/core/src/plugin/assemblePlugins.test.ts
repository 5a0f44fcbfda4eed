import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { container } from 'tsyringe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { parseConfigText } from '../config/loadConfig.js';
import type { Pass } from '../contracts/Pass.js';
import type { Strategy } from '../contracts/Strategy.js';
import { PluginError } from '../errors/errors.js';
import { assemblePlugins } from './assemblePlugins.js';
import { PassToken, StrategyToken } from './coreTokens.js';
import { definePlugin } from './definePlugin.js';
import { registerValue } from './tokenBindings.js';

// Plugin modules on disk hand out plugins made here, so no build of core is needed.
const fixturePlugins = new Map<string, unknown>();
(globalThis as Record<symbol, unknown>)[Symbol.for('open-autoglm.test.assemble-plugins')] = fixturePlugins;

// Only its identity matters here: the registry must hand back the very object the plugin bound.
const strategy: Strategy = {
  trials: 1,
  createStudy: () => {
    throw new Error('not called by these tests');
  },
};
const pass: Pass = { searchSpace: async () => [], apply: async (model) => ({ model, report: {} }) };

describe('assemblePlugins', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'autoglm-assemble-'));
    fixturePlugins.set(
      'strategy',
      definePlugin({ name: 'test-strategy', version: '1.0.0', provides: [StrategyToken], configSchema: z.strictObject({ seed: z.int().default(0) }), register: (c) => registerValue(c, StrategyToken, strategy) }),
    );
    fixturePlugins.set(
      'pass',
      definePlugin({ name: 'test-pass', version: '1.0.0', provides: [PassToken], configSchema: z.strictObject({ ratio: z.number().max(1).default(0.5) }), register: (c) => registerValue(c, PassToken, pass) }),
    );
    for (const key of fixturePlugins.keys()) {
      await writeFile(path.join(dir, `${key}.js`), `export default globalThis[Symbol.for('open-autoglm.test.assemble-plugins')].get(${JSON.stringify(key)});\n`);
    }
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (search: string, passes: string): string =>
    `model: m.onnx\ndata:\n  val: { x: x.npy }\nobjectives: [{ metric: accuracy }]\nsearch: ${search}\npasses:\n${passes}`;

  it('should register the strategy and the passes in config order, with validated options', async () => {
    const loaded = parseConfigText(config('{ use: ./strategy.js, with: { seed: 3 } }', '  - { use: ./pass.js, with: { ratio: 0.25 } }\n'), path.join(dir, 'autoglm.yaml'));
    const assembled = await assemblePlugins(loaded, container.createChildContainer());
    expect(assembled.search.plugin.name).toBe('test-strategy');
    expect(assembled.passes.map((p) => p.plugin.name)).toEqual(['test-pass']);
    expect(assembled.registry.resolve('test-strategy', StrategyToken)).toBe(strategy);
    expect(assembled.registry.resolve('test-pass', PassToken)).toBe(pass);
  });

  it('should report every problem together, each with its key path and line', async () => {
    const loaded = parseConfigText(
      config('{ use: ./pass.js }', '  - { use: ./strategy.js }\n  - { use: ./missing.js }\n  - { use: ./pass.js, with: { ratio: 2 } }\n'),
      path.join(dir, 'autoglm.yaml'),
    );
    const error = await assemblePlugins(loaded, container.createChildContainer()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PluginError);
    const message = (error as PluginError).message;
    expect(message).toContain(path.join(dir, 'autoglm.yaml'));
    expect(message).toMatch(/- search \(line 5\): plugin test-pass does not provide a search strategy \(Token\{core\.strategy\}\)/);
    expect(message).toMatch(/- passes\[0\] \(line 7\): plugin test-strategy does not provide a compression pass/);
    expect(message).toMatch(/- passes\[1\] \(line 8\): Plugin file .*missing\.js does not exist/);
    expect(message).toMatch(/- passes\[2\] \(line 9\): Invalid options for plugin test-pass[\s\S]*ratio/);
  });
});
