import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PluginError } from '../errors/errors.js';

/** The fields of a package.json that plugin loading reads. */
export interface PackageManifest {
  readonly name?: string;
  readonly version?: string;
  readonly main?: string;
  readonly exports?: unknown;
  readonly keywords?: readonly string[];
}

/** An installed package: its folder (as found, symlinks not followed) and manifest. */
export interface InstalledPackage {
  readonly directory: string;
  readonly manifest: PackageManifest;
}

/** Reads `directory/package.json`; PluginError when it is missing or not JSON. */
export async function readPackageManifest(directory: string): Promise<PackageManifest> {
  const file = path.join(directory, 'package.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PluginError(`Cannot read ${file}: ${error instanceof Error ? error.message : String(error)}. Reinstall the package.`, {
      cause: error,
      file,
    });
  }
  try {
    const manifest: unknown = JSON.parse(text);
    if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) throw new Error('not a JSON object');
    return manifest as PackageManifest;
  } catch (error) {
    throw new PluginError(`${file} is not valid JSON: ${error instanceof Error ? error.message : String(error)}. Reinstall the package.`, {
      cause: error,
      file,
    });
  }
}

/**
 * Finds package `name` the way Node does: in `node_modules` of `fromDir` and of each folder
 * above it. `undefined` when it is not installed.
 */
export async function findInstalledPackage(name: string, fromDir: string): Promise<InstalledPackage | undefined> {
  let directory = path.resolve(fromDir);
  for (;;) {
    const candidate = path.join(directory, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) {
      return { directory: candidate, manifest: await readPackageManifest(candidate) };
    }
    const parent = path.dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}

// The conditions Node applies to `import` on Node.js.
const importConditions = new Set(['node', 'import', 'default']);

function resolveExportTarget(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const alternative of target) {
      const resolved = resolveExportTarget(alternative);
      if (resolved !== undefined) return resolved;
    }
    return undefined;
  }
  if (typeof target === 'object' && target !== null) {
    for (const [condition, value] of Object.entries(target)) {
      if (!importConditions.has(condition)) continue;
      const resolved = resolveExportTarget(value);
      if (resolved !== undefined) return resolved;
    }
  }
  return undefined;
}

/**
 * The file `import('<package>' + subpath)` loads: the package's `exports` entry for `subpath`
 * (`.` or `./x`, exact keys), else `main`, else `index.js`. PluginError when there is none.
 */
export function packageEntryFile(installed: InstalledPackage, subpath = '.'): string {
  const { directory, manifest } = installed;
  const label = manifest.name ?? directory;
  const exportsField = manifest.exports;
  let target: string | undefined;
  if (exportsField !== undefined && exportsField !== null) {
    const isSubpathMap =
      typeof exportsField === 'object' && !Array.isArray(exportsField) && Object.keys(exportsField).some((key) => key.startsWith('.'));
    const entry = isSubpathMap ? (exportsField as Record<string, unknown>)[subpath] : subpath === '.' ? exportsField : undefined;
    target = resolveExportTarget(entry);
    if (target === undefined) {
      throw new PluginError(
        `Package ${label} (${directory}) does not export "${subpath}" for import on Node.js. ` +
          'A plugin package must export its plugin from its main entry (exports ".").',
      );
    }
  } else if (subpath === '.') {
    target = manifest.main ?? 'index.js';
  } else {
    target = subpath;
  }
  const file = path.resolve(directory, target);
  for (const candidate of [file, `${file}.js`, path.join(file, 'index.js')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new PluginError(
    `Package ${label} has no entry file ${file}. If it is built from sources (a workspace package), build it first; otherwise reinstall it.`,
    { file },
  );
}
