import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isAutoGlmError, PluginError } from '../errors/errors.js';
import { isPlugin, type Plugin } from './definePlugin.js';
import { findInstalledPackage, packageEntryFile, readPackageManifest, type InstalledPackage } from './findInstalledPackage.js';

/** First-party plugins a config may name by short name (`use: quantizer-int8`). */
export const firstPartyPluginPackages: Readonly<Record<string, string>> = Object.freeze({
  'pruner-structured': '@open-autoglm/pruner-structured',
  'quantizer-int8': '@open-autoglm/quantizer-int8',
  'distiller-kd': '@open-autoglm/distiller-kd',
  'search-bayes': '@open-autoglm/search-bayes',
  'search-rl': '@open-autoglm/search-rl',
});

export interface LoadPluginOptions {
  /** Folder a relative plugin path is resolved from, and where package lookup starts: the config file's folder. */
  readonly configDir: string;
  /** The config file that names the plugin, for messages. */
  readonly configFile?: string;
  /**
   * Folders to look up packages from when the config folder has none; default: core's own
   * folder, so that plugins installed next to a global CLI are found.
   */
  readonly fallbackDirs?: readonly string[];
}

const packageNamePattern = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

function isPathSpecifier(specifier: string): boolean {
  return specifier.startsWith('.') || specifier.startsWith('file:') || path.isAbsolute(specifier) || /^[A-Za-z]:[\\/]/.test(specifier);
}

/** `@scope/name/sub` -> package `@scope/name`, subpath `./sub`. */
function splitPackageSpecifier(specifier: string): { packageName: string; subpath: string } {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(nameLength).join('/');
  return { packageName: parts.slice(0, nameLength).join('/'), subpath: rest === '' ? '.' : `./${rest}` };
}

/**
 * Loads the plugin a config names under `use:`. A first-party short name (`quantizer-int8`)
 * means `@open-autoglm/quantizer-int8`; a path (`./plugins/mine.js`, a file or a package
 * folder) is resolved from the config file's folder; any other name is a package, looked up
 * from the config file's folder, then from `fallbackDirs` (default: core's own install). The module's default export must
 * be a plugin made by `definePlugin`, named and versioned as its package.json says.
 */
export async function loadPlugin(specifier: string, options: LoadPluginOptions): Promise<Plugin> {
  const origin = options.configFile === undefined ? `\`use: ${specifier}\`` : `\`use: ${specifier}\` in ${options.configFile}`;
  if (isPathSpecifier(specifier)) return loadPluginFromPath(specifier, options, origin);

  const mapped = firstPartyPluginPackages[specifier] ?? specifier;
  const { packageName, subpath } = splitPackageSpecifier(mapped);
  if (!packageNamePattern.test(packageName)) {
    throw new PluginError(
      `${origin} names neither a plugin package nor a path. Use a first-party plugin (${Object.keys(firstPartyPluginPackages).join(', ')}), ` +
        'an npm package name, or a path starting with ./ relative to the config file.',
      options.configFile === undefined ? {} : { file: options.configFile },
    );
  }
  const searchDirs = [options.configDir, ...(options.fallbackDirs ?? [path.dirname(fileURLToPath(import.meta.url))])];
  let installed: InstalledPackage | undefined;
  for (const directory of searchDirs) {
    installed ??= await findInstalledPackage(packageName, directory);
  }
  if (installed === undefined) {
    const known = specifier in firstPartyPluginPackages || packageName.startsWith('@open-autoglm/');
    throw new PluginError(
      `Plugin package ${packageName} is not installed (needed by ${origin}). Install it: npm install ${packageName}` +
        (known ? '' : `\nFirst-party plugins can be named by short name: ${Object.keys(firstPartyPluginPackages).join(', ')}.`),
      options.configFile === undefined ? {} : { file: options.configFile },
    );
  }
  return importPluginFromPackage(installed, subpath, origin);
}

async function loadPluginFromPath(specifier: string, options: LoadPluginOptions, origin: string): Promise<Plugin> {
  const resolved = specifier.startsWith('file:') ? fileURLToPath(specifier) : path.resolve(options.configDir, specifier);
  if (!existsSync(resolved)) {
    throw new PluginError(
      `Plugin file ${resolved} does not exist (named by ${origin}). ` +
        `A relative plugin path is resolved from the config file's folder (${options.configDir}); check the path.`,
      { file: options.configFile ?? resolved },
    );
  }
  if (statSync(resolved).isDirectory()) {
    if (!existsSync(path.join(resolved, 'package.json'))) {
      throw new PluginError(
        `Plugin folder ${resolved} (named by ${origin}) has no package.json. Name the plugin's module file instead, or make the folder a package.`,
        { file: options.configFile ?? resolved },
      );
    }
    return importPluginFromPackage({ directory: resolved, manifest: await readPackageManifest(resolved) }, '.', origin);
  }
  return importPlugin(resolved, origin);
}

/** Imports a package's plugin and checks that its name and version are the package's. */
export async function importPluginFromPackage(installed: InstalledPackage, subpath: string, origin: string): Promise<Plugin> {
  const plugin = await importPlugin(packageEntryFile(installed, subpath), origin);
  const { name, version } = installed.manifest;
  if (subpath === '.' && (plugin.name !== name || plugin.version !== version)) {
    throw new PluginError(
      `Plugin ${plugin.name}@${plugin.version} does not match its package ${String(name)}@${String(version)} (${installed.directory}). ` +
        "definePlugin's name and version must equal the package.json's; read them from there or update them together.",
      { file: path.join(installed.directory, 'package.json') },
    );
  }
  return plugin;
}

async function importPlugin(file: string, origin: string): Promise<Plugin> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    if (isAutoGlmError(error)) throw error;
    const hint =
      (error as NodeJS.ErrnoException | undefined)?.code === 'ERR_UNKNOWN_FILE_EXTENSION'
        ? ' Node.js cannot import this file type: compile the plugin to JavaScript first.'
        : ' Fix the module or reinstall the package.';
    throw new PluginError(`Plugin module ${file} (named by ${origin}) failed to load: ${error instanceof Error ? error.message : String(error)}.${hint}`, {
      cause: error,
      file,
    });
  }
  // A CommonJS module compiled from ESM arrives as { default: { default: plugin } }.
  const exported = isPlugin(module.default) ? module.default : (module.default as { default?: unknown } | undefined)?.default;
  if (!isPlugin(exported)) {
    throw new PluginError(
      `Plugin module ${file} (named by ${origin}) does not default-export a plugin. ` +
        'Its entry must `export default definePlugin({ name, version, provides, configSchema, register })`.',
      { file },
    );
  }
  return exported;
}
