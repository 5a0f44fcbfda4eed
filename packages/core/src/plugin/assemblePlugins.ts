import path from 'node:path';
import type { DependencyContainer } from 'tsyringe';
import type { LoadedConfig } from '../config/loadConfig.js';
import type { KeyPath } from '../config/ConfigLocation.js';
import { formatKeyPath } from '../config/ConfigLocation.js';
import { AutoGlmError, PluginError } from '../errors/errors.js';
import { PassToken, StrategyToken } from './coreTokens.js';
import type { Token } from './createToken.js';
import type { Plugin } from './definePlugin.js';
import { loadPlugin } from './loadPlugin.js';
import { PluginRegistry } from './PluginRegistry.js';

/** One `use:` of a config, loaded and registered. */
export interface AssembledPlugin {
  /** Where it is named in the config (`search`, `passes[1]`). */
  readonly keyPath: KeyPath;
  readonly specifier: string;
  readonly plugin: Plugin;
}

/** The plugins a config names, registered on one registry: the strategy and the passes in order. */
export interface AssembledPlugins {
  readonly registry: PluginRegistry;
  readonly search: AssembledPlugin;
  readonly passes: readonly AssembledPlugin[];
}

/**
 * Loads every plugin a config names (`search:` and `passes:`), validates each `with:` block with
 * the plugin's own schema and registers it on a registry made from `parent` (one child container
 * per plugin). Checks that the search plugin provides a strategy and each pass plugin a pass.
 * Every problem is collected and reported together in one PluginError, so a config with three
 * mistakes needs one round trip, not three.
 */
export async function assemblePlugins(loaded: LoadedConfig, parent: DependencyContainer): Promise<AssembledPlugins> {
  const registry = new PluginRegistry(parent);
  const problems: string[] = [];
  const uses: Array<{ keyPath: KeyPath; use: { use: string; with?: unknown }; token: Token<unknown>; role: string }> = [
    { keyPath: ['search'], use: loaded.config.search, token: StrategyToken, role: 'a search strategy' },
    ...loaded.config.passes.map((use, index) => ({ keyPath: ['passes', index] as KeyPath, use, token: PassToken, role: 'a compression pass' })),
  ];
  const assembled: AssembledPlugin[] = [];
  const configDir = path.dirname(loaded.file);
  for (const { keyPath, use, token, role } of uses) {
    const where = `${formatKeyPath(keyPath)} (${describeLine(loaded, [...keyPath, 'use'])})`;
    try {
      const plugin = await loadPlugin(use.use, { configDir, configFile: loaded.file });
      if (!plugin.provides.some((provided) => provided.id === token.id)) {
        throw new PluginError(
          `plugin ${plugin.name} does not provide ${role} (${token.toString()}); it provides ${plugin.provides.map(String).join(', ')}. ` +
            `Name it where it belongs in the config, or choose a plugin that provides ${role}.`,
        );
      }
      registry.add(plugin, use.with ?? {}, { location: loaded.locationOf([...keyPath, 'with']) });
      assembled.push({ keyPath, specifier: use.use, plugin });
    } catch (error) {
      if (!(error instanceof AutoGlmError)) throw error;
      problems.push(`${where}: ${error.message}`);
    }
  }
  if (problems.length > 0) {
    throw new PluginError(
      `The plugins named in ${loaded.file} cannot all be used:\n${problems.map((p) => `- ${p.replaceAll('\n', '\n  ')}`).join('\n')}`,
      { file: loaded.file },
    );
  }
  const [search, ...passes] = assembled as [AssembledPlugin, ...AssembledPlugin[]];
  return { registry, search, passes };
}

function describeLine(loaded: LoadedConfig, keyPath: KeyPath): string {
  const position = loaded.locate(keyPath);
  return position === undefined ? loaded.file : `line ${position.line}`;
}
