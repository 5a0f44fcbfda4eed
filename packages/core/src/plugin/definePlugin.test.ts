import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import * as z from 'zod';
import { PluginError } from '../errors/errors.js';
import { EvaluatorToken, PassToken } from './coreTokens.js';
import { definePlugin, isPlugin, type Plugin, type PluginDefinition } from './definePlugin.js';

const validDefinition = {
  name: '@acme/autoglm-pruner',
  version: '1.2.3',
  provides: [PassToken],
  configSchema: z.strictObject({ ratio: z.number().default(0.5) }),
  register: () => {},
} satisfies PluginDefinition<{ ratio: number }>;

describe('definePlugin', () => {
  it('should return a frozen plugin that isPlugin recognises', () => {
    const plugin = definePlugin(validDefinition);
    expect(Object.isFrozen(plugin)).toBe(true);
    expect(Object.isFrozen(plugin.provides)).toBe(true);
    expect(isPlugin(plugin)).toBe(true);
    expect(plugin).toMatchObject({ name: '@acme/autoglm-pruner', version: '1.2.3', provides: [PassToken] });
    expect(isPlugin({ ...validDefinition })).toBe(false);
    expect(isPlugin({ ...plugin })).toBe(false);
    expect(isPlugin(null)).toBe(false);
  });

  it('should recognise plugins made by another copy of core', async () => {
    vi.resetModules();
    const copy = await import('./definePlugin.js');
    expect(copy.definePlugin).not.toBe(definePlugin);
    expect(isPlugin(copy.definePlugin(validDefinition))).toBe(true);
  });

  it('should type register’s options from the config schema', () => {
    definePlugin({
      ...validDefinition,
      register: (container, config) => {
        expectTypeOf(container).toEqualTypeOf<DependencyContainer>();
        expectTypeOf(config).toEqualTypeOf<{ ratio: number }>();
      },
    });
    expectTypeOf(definePlugin(validDefinition)).toEqualTypeOf<Plugin<{ ratio: number }>>();
  });

  it.each([
    [{ name: 'Not A Name' }, /invalid name "Not A Name".*package\.json/],
    [{ version: '1.0' }, /invalid version "1.0".*semver/],
    [{ provides: [] }, /must list the tokens it binds in "provides"/],
    [{ provides: [PassToken, PassToken] }, /lists Token\{core\.pass\} twice/],
    [{ provides: [Symbol.for('core.pass')] }, /not a token made by createToken/],
    [{ configSchema: { parse: () => ({}) } }, /needs a zod schema/],
    [{ register: undefined }, /needs a "register\(container, config\)" function/],
    [{ provide: [EvaluatorToken] }, /unknown key\(s\) "provide"; allowed keys: name, version/],
  ])('should reject a broken definition (%o)', (override, message) => {
    const definition = { ...validDefinition, ...override } as unknown as PluginDefinition<unknown>;
    expect(() => definePlugin(definition)).toThrow(PluginError);
    expect(() => definePlugin(definition)).toThrow(message);
  });
});
