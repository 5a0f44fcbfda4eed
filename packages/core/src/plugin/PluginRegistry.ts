import { isDeepStrictEqual } from 'node:util';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import type { ConfigLocation } from '../config/ConfigLocation.js';
import { validatePluginOptions } from '../config/validatePluginOptions.js';
import { isAutoGlmError, PluginError } from '../errors/errors.js';
import type { Token } from './createToken.js';
import { isPlugin, type Plugin } from './definePlugin.js';

interface PluginInstance {
  readonly plugin: Plugin;
  readonly options: unknown;
  readonly container: DependencyContainer;
}

/** A value a plugin provides, with the plugin's name. */
export interface ProvidedValue<T> {
  readonly pluginName: string;
  readonly value: T;
}

export interface AddPluginOptions {
  /** Where the options came from (a config's `with:` block), for messages. */
  readonly location?: ConfigLocation;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The plugins of one run. Each plugin gets its own child container of `parent`, so that
 * plugins providing the same token (several passes) do not overwrite each other.
 */
export class PluginRegistry {
  readonly #parent: DependencyContainer;
  readonly #instances = new Map<string, PluginInstance>();

  /** `parent` is the run's root container: `container.createChildContainer()`, never the global one. */
  constructor(parent: DependencyContainer) {
    if (parent === globalContainer) {
      throw new PluginError(
        "PluginRegistry needs a child container, not tsyringe's global container: " +
          'create one with container.createChildContainer() and pass that, so runs and tests stay isolated.',
      );
    }
    if (typeof (parent as Partial<DependencyContainer> | undefined)?.createChildContainer !== 'function') {
      throw new PluginError('PluginRegistry needs a tsyringe DependencyContainer (from container.createChildContainer()).');
    }
    this.#parent = parent;
  }

  /**
   * Validates `rawOptions` with the plugin's schema, creates the plugin's child container and
   * calls its `register`, then checks that every token in `provides` was bound. Adding the same
   * plugin again with equal options does nothing.
   */
  add<TOptions>(plugin: Plugin<TOptions>, rawOptions: unknown, addOptions: AddPluginOptions = {}): void {
    if (!isPlugin(plugin)) {
      throw new PluginError(`PluginRegistry.add expects a plugin made by definePlugin; got ${describeNonPlugin(plugin)}.`);
    }
    const existing = this.#instances.get(plugin.name);
    if (existing !== undefined && existing.plugin !== plugin) {
      throw new PluginError(
        `Two different plugins are named ${plugin.name} (versions ${existing.plugin.version} and ${plugin.version}). ` +
          `Keep one: check that only one copy of the package is installed (npm ls ${plugin.name}).`,
      );
    }
    const options = validatePluginOptions(plugin, rawOptions, addOptions.location);
    if (existing !== undefined) {
      if (isDeepStrictEqual(existing.options, options)) return;
      throw new PluginError(
        `Plugin ${plugin.name} is already registered with other options; a plugin is used once per run. ` +
          'Merge its options into one entry.',
      );
    }
    const child = this.#parent.createChildContainer();
    let returned: unknown;
    try {
      returned = (plugin.register as (container: DependencyContainer, config: unknown) => unknown)(child, options);
    } catch (error) {
      if (isAutoGlmError(error)) throw error;
      throw new PluginError(`Plugin ${plugin.name} failed in register(): ${errorMessage(error)}`, { cause: error });
    }
    if (typeof (returned as PromiseLike<unknown> | undefined)?.then === 'function') {
      throw new PluginError(
        `Plugin ${plugin.name}'s register() returned a promise, but register must bind synchronously. ` +
          'Move asynchronous work into the factories or into the methods of the objects it provides.',
      );
    }
    this.#checkBindings(plugin, child);
    this.#instances.set(plugin.name, { plugin, options, container: child });
  }

  #checkBindings(plugin: Plugin, child: DependencyContainer): void {
    const problems = plugin.provides
      .filter((token) => !child.isRegistered(token.symbol, false))
      .map((token) =>
        globalContainer.isRegistered(token.symbol, false)
          ? `plugin ${plugin.name} declares that it provides ${token.id} but bound it on tsyringe's global container; ` +
            'bind it on the container register() receives'
          : `plugin ${plugin.name} declares that it provides ${token.id} but its register() did not bind it`,
      );
    if (problems.length > 0) {
      throw new PluginError(
        `${problems.join('; ')}. Bind every token of "provides" in register(), for example ` +
          'registerFactory(container, PassToken, () => createPass(config)), or remove it from "provides".',
      );
    }
  }

  /** True when a plugin named `name` was added. */
  has(name: string): boolean {
    return this.#instances.has(name);
  }

  /** The added plugins, in the order they were added. */
  get plugins(): readonly Plugin[] {
    return [...this.#instances.values()].map((instance) => instance.plugin);
  }

  /** What `plugin` (or the plugin named so) provides under `token`. */
  resolve<T>(plugin: string | Plugin, token: Token<T>): T {
    const name = typeof plugin === 'string' ? plugin : plugin.name;
    const instance = this.#instances.get(name);
    if (instance === undefined || (typeof plugin !== 'string' && instance.plugin !== plugin)) {
      const registered = [...this.#instances.keys()];
      throw new PluginError(
        `No plugin ${name} is registered${registered.length === 0 ? '' : ` (registered: ${registered.join(', ')})`}. ` +
          'Add it first with PluginRegistry.add (the CLI adds the plugins a config names under search and passes).',
      );
    }
    return this.#resolveFrom(instance, token);
  }

  /** Everything the added plugins provide under `token`, in the order the plugins were added. */
  resolveAll<T>(token: Token<T>): ProvidedValue<T>[] {
    return [...this.#instances.values()]
      .filter((instance) => instance.plugin.provides.some((provided) => provided.id === token.id))
      .map((instance) => ({ pluginName: instance.plugin.name, value: this.#resolveFrom(instance, token) }));
  }

  #resolveFrom<T>(instance: PluginInstance, token: Token<T>): T {
    const { plugin } = instance;
    if (!plugin.provides.some((provided) => provided.id === token.id)) {
      throw new PluginError(
        `Plugin ${plugin.name} does not provide ${token.id}; it provides ${plugin.provides.map((provided) => provided.id).join(', ')}. ` +
          'Check which plugin the config names for this role.',
      );
    }
    let value: T;
    try {
      value = instance.container.resolve<T>(token.symbol);
    } catch (error) {
      if (isAutoGlmError(error)) throw error;
      throw new PluginError(`Plugin ${plugin.name} failed to create ${token.id}: ${errorMessage(error)}`, { cause: error });
    }
    if (value === undefined || value === null) {
      throw new PluginError(`Plugin ${plugin.name} bound ${token.id} to ${String(value)}; its factory must return the ${token.id} it provides.`);
    }
    return value;
  }
}

function describeNonPlugin(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') {
    const name = (value as { name?: unknown }).name;
    return typeof name === 'string' ? `an object named ${JSON.stringify(name)} that was not made by definePlugin` : 'an object that was not made by definePlugin';
  }
  return typeof value;
}
