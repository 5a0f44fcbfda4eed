import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { PluginError } from '../errors/errors.js';
import type { Plugin } from './definePlugin.js';
import { readPackageManifest, type InstalledPackage } from './findInstalledPackage.js';
import { importPluginFromPackage } from './loadPlugin.js';

/** The package.json keyword by which a third-party package declares that it is a plugin. */
export const pluginPackageKeyword = 'open-autoglm-plugin';

export interface DiscoveredPlugin {
  readonly packageName: string;
  readonly directory: string;
  readonly plugin: Plugin;
}

/** A package that declares itself a plugin (keyword) but cannot be loaded as one. */
export interface PluginDiscoveryFailure {
  readonly packageName: string;
  readonly directory: string;
  readonly error: PluginError;
}

export interface PluginDiscovery {
  /** By package name. */
  readonly plugins: readonly DiscoveredPlugin[];
  readonly failures: readonly PluginDiscoveryFailure[];
}

async function listDirectory(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory, { withFileTypes: true }))
      .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && !entry.name.startsWith('.'))
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** Package folders directly in a node_modules folder, scoped ones included. */
async function listPackages(nodeModules: string): Promise<{ name: string; directory: string }[]> {
  const packages: { name: string; directory: string }[] = [];
  for (const entry of await listDirectory(nodeModules)) {
    if (!entry.startsWith('@')) {
      packages.push({ name: entry, directory: path.join(nodeModules, entry) });
      continue;
    }
    for (const scoped of await listDirectory(path.join(nodeModules, entry))) {
      packages.push({ name: `${entry}/${scoped}`, directory: path.join(nodeModules, entry, scoped) });
    }
  }
  return packages;
}

/**
 * The plugins installed where Node would find packages from `fromDir` (its node_modules and
 * those above it; the nearest copy of a package wins). Candidates are the `@open-autoglm/*`
 * packages and packages with the keyword `open-autoglm-plugin`; a candidate is listed when its
 * default export is a plugin. A package with the keyword that fails to load is reported in
 * `failures`; an `@open-autoglm/*` package without it (core, the CLI) is skipped quietly.
 */
export async function discoverInstalledPlugins(fromDir: string): Promise<PluginDiscovery> {
  const plugins: DiscoveredPlugin[] = [];
  const failures: PluginDiscoveryFailure[] = [];
  const seen = new Set<string>();
  let directory = path.resolve(fromDir);
  for (;;) {
    for (const { name, directory: packageDirectory } of await listPackages(path.join(directory, 'node_modules'))) {
      if (seen.has(name)) continue;
      seen.add(name);
      let installed: InstalledPackage;
      try {
        installed = { directory: packageDirectory, manifest: await readPackageManifest(packageDirectory) };
      } catch {
        continue; // not a package (a stray folder): nothing to report
      }
      const declared = Array.isArray(installed.manifest.keywords) && installed.manifest.keywords.includes(pluginPackageKeyword);
      if (!declared && !name.startsWith('@open-autoglm/')) continue;
      try {
        const plugin = await importPluginFromPackage(installed, '.', `package ${name}`);
        plugins.push({ packageName: name, directory: packageDirectory, plugin });
      } catch (error) {
        if (!declared) continue;
        const pluginError =
          error instanceof PluginError ? error : new PluginError(`Package ${name} failed to load: ${String(error)}`, { cause: error });
        failures.push({ packageName: name, directory: packageDirectory, error: pluginError });
      }
    }
    const parent = path.dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  plugins.sort((a, b) => a.packageName.localeCompare(b.packageName));
  failures.sort((a, b) => a.packageName.localeCompare(b.packageName));
  return { plugins, failures };
}
