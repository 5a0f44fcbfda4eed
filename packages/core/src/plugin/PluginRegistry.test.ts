import 'reflect-metadata';
import { container, type DependencyContainer } from 'tsyringe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import { parseConfigText } from '../config/loadConfig.js';
import { silentLogger, type Logger } from '../contracts/Logger.js';
import type { Pass } from '../contracts/Pass.js';
import { ConfigError, PluginError } from '../errors/errors.js';
import { LoggerToken, PassToken, StrategyToken } from './coreTokens.js';
import { definePlugin, type Plugin } from './definePlugin.js';
import { PluginRegistry } from './PluginRegistry.js';
import { registerFactory, registerValue } from './tokenBindings.js';

/** A pass that records its options, so tests can tell instances apart. */
function fakePass(label: string): Pass & { label: string } {
  return {
    label,
    searchSpace: async () => [],
    apply: async (model) => ({ model, report: { label } }),
  };
}

const prunerOptions = z.strictObject({ ratio: z.number().min(0).max(1).default(0.5) });

function prunerPlugin(name = '@acme/pruner', calls = { register: 0 }): Plugin<z.output<typeof prunerOptions>> {
  return definePlugin({
    name,
    version: '1.0.0',
    provides: [PassToken],
    configSchema: prunerOptions,
    register: (child, options) => {
      calls.register++;
      registerFactory(child, PassToken, () => fakePass(`${name} ratio=${options.ratio}`));
    },
  });
}

describe('PluginRegistry', () => {
  let root: DependencyContainer;
  beforeEach(() => {
    root = container.createChildContainer();
  });

  it("should refuse tsyringe's global container", () => {
    expect(() => new PluginRegistry(container)).toThrow(/needs a child container.*createChildContainer\(\)/);
  });

  it('should give each plugin its own child container', () => {
    const registry = new PluginRegistry(root);
    registry.add(prunerPlugin('@acme/pruner-a'), { ratio: 0.25 });
    registry.add(prunerPlugin('@acme/pruner-b'), {});
    expect((registry.resolve('@acme/pruner-a', PassToken) as ReturnType<typeof fakePass>).label).toBe('@acme/pruner-a ratio=0.25');
    expect((registry.resolve('@acme/pruner-b', PassToken) as ReturnType<typeof fakePass>).label).toBe('@acme/pruner-b ratio=0.5');
    expect(root.isRegistered(PassToken.symbol, true)).toBe(false);
    expect(registry.plugins.map((plugin) => plugin.name)).toEqual(['@acme/pruner-a', '@acme/pruner-b']);
    expect(registry.has('@acme/pruner-a')).toBe(true);
  });

  it('should resolve everything provided under a token, in the order plugins were added', () => {
    const registry = new PluginRegistry(root);
    const second = prunerPlugin('@acme/second');
    registry.add(prunerPlugin('@acme/first'), {});
    registry.add(second, {});
    const all = registry.resolveAll(PassToken);
    expect(all.map((provided) => provided.pluginName)).toEqual(['@acme/first', '@acme/second']);
    expect(all[1]?.value).toBe(registry.resolve(second, PassToken));
    expect(registry.resolveAll(StrategyToken)).toEqual([]);
  });

  it('should validate options with the plugin’s schema and name the plugin and key', () => {
    const registry = new PluginRegistry(root);
    expect(() => registry.add(prunerPlugin(), { ratio: 2 })).toThrow(ConfigError);
    expect(() => registry.add(prunerPlugin(), { ratio: 2 })).toThrow(
      'Invalid options for plugin @acme/pruner:\n  ratio: expected a number <= 1, got 2\n',
    );
    expect(() => registry.add(prunerPlugin(), { ratoi: 0.1 })).toThrow(/ratoi: unknown key "ratoi" \(did you mean "ratio"\?\); allowed keys: ratio/);
    expect(registry.has('@acme/pruner')).toBe(false);
  });

  it('should point at the line of a bad option in the config file', () => {
    const loaded = parseConfigText(
      [
        'model: m.onnx',
        'data: { val: { x: v.npy } }',
        'objectives: [{ metric: accuracy }]',
        'search: { use: search-bayes }',
        'passes:',
        '  - use: pruner',
        '    with: { ratio: 1.5 }',
      ].join('\n'),
      '/work/project/autoglm.yaml',
    );
    const pass = loaded.config.passes[0];
    expect(pass).toBeDefined();
    const registry = new PluginRegistry(root);
    expect(() => registry.add(prunerPlugin(), pass?.with, { location: loaded.locationOf(['passes', 0, 'with']) })).toThrow(
      'Invalid options for plugin @acme/pruner (passes[0].with in /work/project/autoglm.yaml):\n' +
        '  line 7, column 20: passes[0].with.ratio: expected a number <= 1, got 1.5\n',
    );
  });

  it('should do nothing when the same plugin is added again with the same options', () => {
    const calls = { register: 0 };
    const plugin = prunerPlugin('@acme/pruner', calls);
    const registry = new PluginRegistry(root);
    registry.add(plugin, { ratio: 0.5 });
    const pass = registry.resolve(plugin, PassToken);
    registry.add(plugin, {}); // equal once the default is applied
    expect(calls.register).toBe(1);
    expect(registry.resolve(plugin, PassToken)).toBe(pass);
  });

  it('should refuse the same plugin again with other options', () => {
    const registry = new PluginRegistry(root);
    const plugin = prunerPlugin();
    registry.add(plugin, { ratio: 0.1 });
    expect(() => registry.add(plugin, { ratio: 0.2 })).toThrow(/already registered with other options/);
  });

  it('should refuse a different plugin under a name already taken', () => {
    const registry = new PluginRegistry(root);
    registry.add(prunerPlugin('@acme/pruner'), {});
    expect(() => registry.add(prunerPlugin('@acme/pruner'), {})).toThrow(PluginError);
    expect(() => registry.add(prunerPlugin('@acme/pruner'), {})).toThrow(
      /Two different plugins are named @acme\/pruner.*npm ls @acme\/pruner/,
    );
  });

  it('should report a provided token that register() did not bind', () => {
    const plugin = definePlugin({
      name: 'lazy-plugin',
      version: '0.1.0',
      provides: [PassToken, StrategyToken],
      configSchema: z.strictObject({}),
      register: (child) => registerValue(child, PassToken, fakePass('only the pass')),
    });
    const registry = new PluginRegistry(root);
    expect(() => registry.add(plugin, {})).toThrow(
      'plugin lazy-plugin declares that it provides core.strategy but its register() did not bind it. ',
    );
    expect(registry.has('lazy-plugin')).toBe(false);
  });

  describe('with a plugin that binds on the global container', () => {
    afterEach(() => container.reset());

    it("should say that it bound the token on tsyringe's global container", () => {
      const plugin = definePlugin({
        name: 'global-plugin',
        version: '0.1.0',
        provides: [PassToken],
        configSchema: z.strictObject({}),
        register: () => registerValue(container, PassToken, fakePass('global')),
      });
      expect(() => new PluginRegistry(root).add(plugin, {})).toThrow(
        "plugin global-plugin declares that it provides core.pass but bound it on tsyringe's global container",
      );
    });
  });

  it('should refuse a register() that returns a promise', () => {
    const plugin = definePlugin({
      name: 'async-plugin',
      version: '0.1.0',
      provides: [PassToken],
      configSchema: z.strictObject({}),
      register: (async (child: DependencyContainer) => registerValue(child, PassToken, fakePass('late'))) as (child: DependencyContainer) => void,
    });
    expect(() => new PluginRegistry(root).add(plugin, {})).toThrow(/register\(\) returned a promise.*synchronously/);
  });

  it('should wrap an error thrown by register() with the plugin’s name', () => {
    const failure = new Error('no GPU here');
    const plugin = definePlugin({
      name: 'crashing-plugin',
      version: '0.1.0',
      provides: [PassToken],
      configSchema: z.strictObject({}),
      register: () => {
        throw failure;
      },
    });
    const error = (() => {
      try {
        new PluginRegistry(root).add(plugin, {});
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(PluginError);
    expect((error as PluginError).message).toBe('Plugin crashing-plugin failed in register(): no GPU here');
    expect((error as PluginError).cause).toBe(failure);
  });

  it('should reject what definePlugin did not make', () => {
    const imitation = { name: 'imitation', version: '1.0.0', provides: [PassToken], configSchema: z.strictObject({}), register: () => {} };
    expect(() => new PluginRegistry(root).add(imitation as unknown as Plugin, {})).toThrow(
      /expects a plugin made by definePlugin; got an object named "imitation"/,
    );
  });

  it('should explain resolving a plugin that was not added or a token it does not provide', () => {
    const registry = new PluginRegistry(root);
    registry.add(prunerPlugin(), {});
    expect(() => registry.resolve('@acme/missing', PassToken)).toThrow(/No plugin @acme\/missing is registered \(registered: @acme\/pruner\)/);
    expect(() => registry.resolve('@acme/pruner', StrategyToken)).toThrow(
      'Plugin @acme/pruner does not provide core.strategy; it provides core.pass.',
    );
    expect(() => registry.resolve(prunerPlugin(), PassToken)).toThrow(/No plugin @acme\/pruner is registered/);
  });

  it('should let factories use the logger bound on the root and wrap their failures', () => {
    const messages: string[] = [];
    const logger: Logger = { ...silentLogger, info: (message) => messages.push(message) };
    registerValue(root, LoggerToken, logger);
    const registry = new PluginRegistry(root);
    registry.add(
      definePlugin({
        name: 'logging-plugin',
        version: '0.1.0',
        provides: [PassToken],
        configSchema: z.strictObject({}),
        register: (child) =>
          registerFactory(child, PassToken, (resolving) => {
            resolving.resolve<Logger>(LoggerToken.symbol).info('pass created');
            return fakePass('logged');
          }),
      }),
      {},
    );
    registry.add(
      definePlugin({
        name: 'broken-factory',
        version: '0.1.0',
        provides: [PassToken],
        configSchema: z.strictObject({}),
        register: (child) =>
          registerFactory(child, PassToken, () => {
            throw new Error('model format not supported');
          }),
      }),
      {},
    );
    registry.resolve('logging-plugin', PassToken);
    expect(messages).toEqual(['pass created']);
    expect(() => registry.resolve('broken-factory', PassToken)).toThrow(
      'Plugin broken-factory failed to create core.pass: model format not supported',
    );
  });
});
