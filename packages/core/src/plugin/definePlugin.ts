import type { DependencyContainer } from 'tsyringe';
import type * as z from 'zod';
import { PluginError } from '../errors/errors.js';
import { isToken, type Token } from './createToken.js';

// Symbol.for, so that plugins made by another installed copy of core are recognised too.
const pluginBrand: unique symbol = Symbol.for('open-autoglm.plugin');

/** What a plugin package declares; `definePlugin` checks it and returns a frozen `Plugin`. */
export interface PluginDefinition<TOptions> {
  /** The plugin package's name, equal to `name` in its package.json. */
  readonly name: string;
  /** The plugin package's version, equal to `version` in its package.json. */
  readonly version: string;
  /** One line for `autoglm plugins`. */
  readonly description?: string;
  /** Every token `register` binds; the registry checks that each one was bound. */
  readonly provides: readonly Token<unknown>[];
  /** Validates the plugin's `with:` options; it should be strict (reject unknown keys). */
  readonly configSchema: z.ZodType<TOptions>;
  /**
   * Binds what the plugin provides on `container`, a child container made for this plugin
   * instance, with factories (`registerFactory`) or values (`registerValue`). Synchronous:
   * slow work belongs in the factories or in the provided objects' methods.
   */
  register(container: DependencyContainer, config: TOptions): void;
}

/** A plugin made by `definePlugin`: what a plugin package default-exports. */
export interface Plugin<TOptions = unknown> extends PluginDefinition<TOptions> {
  readonly [pluginBrand]: true;
}

const definitionKeys = ['name', 'version', 'description', 'provides', 'configSchema', 'register'] as const;
const packageNamePattern = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
const semverPattern = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/**
 * Declares a plugin. The result is frozen; the options type comes from `configSchema`, so
 * `register` receives validated, typed options.
 */
export function definePlugin<TOptions>(definition: PluginDefinition<TOptions>): Plugin<TOptions> {
  checkDefinition(definition);
  const plugin = {
    name: definition.name,
    version: definition.version,
    ...(definition.description === undefined ? {} : { description: definition.description }),
    provides: Object.freeze([...definition.provides]),
    configSchema: definition.configSchema,
    register: definition.register,
  };
  // Not enumerable, so that a spread copy (`{ ...plugin }`) is not taken for the plugin.
  Object.defineProperty(plugin, pluginBrand, { value: true });
  return Object.freeze(plugin) as Plugin<TOptions>;
}

/** True for plugins made by `definePlugin`, from this or any other copy of core. */
export function isPlugin(value: unknown): value is Plugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[pluginBrand] === true;
}

function checkDefinition(definition: PluginDefinition<unknown>): void {
  const label = typeof definition.name === 'string' ? `plugin "${definition.name}"` : 'a plugin';
  function fail(problem: string): never {
    throw new PluginError(`definePlugin: ${label} ${problem}`);
  }
  const unknownKeys = Object.keys(definition).filter((key) => !(definitionKeys as readonly string[]).includes(key));
  if (unknownKeys.length > 0) {
    fail(`has unknown key(s) ${unknownKeys.map((key) => `"${key}"`).join(', ')}; allowed keys: ${definitionKeys.join(', ')}.`);
  }
  if (typeof definition.name !== 'string' || !packageNamePattern.test(definition.name)) {
    fail(`has an invalid name ${JSON.stringify(definition.name)}: use the "name" of the plugin's package.json.`);
  }
  if (typeof definition.version !== 'string' || !semverPattern.test(definition.version)) {
    fail(`has an invalid version ${JSON.stringify(definition.version)}: use the "version" of the plugin's package.json (semver, like 1.2.3).`);
  }
  if (definition.description !== undefined && typeof definition.description !== 'string') {
    fail('has a description that is not a string.');
  }
  if (!Array.isArray(definition.provides) || definition.provides.length === 0) {
    fail('must list the tokens it binds in "provides" (for example [PassToken]).');
  }
  const ids = new Set<string>();
  for (const token of definition.provides) {
    if (!isToken(token)) fail(`lists ${String(token)} in "provides", which is not a token made by createToken.`);
    if (ids.has(token.id)) fail(`lists ${token.toString()} twice in "provides".`);
    ids.add(token.id);
  }
  if (!isZodSchema(definition.configSchema)) {
    fail('needs a zod schema as "configSchema" (for example z.strictObject({ ... })).');
  }
  if (typeof definition.register !== 'function') {
    fail('needs a "register(container, config)" function.');
  }
}

function isZodSchema(value: unknown): value is z.ZodType {
  return (
    typeof value === 'object' &&
    value !== null &&
    '_zod' in value &&
    typeof (value as { safeParse?: unknown }).safeParse === 'function'
  );
}
