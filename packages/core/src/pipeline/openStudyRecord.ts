import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { PluginError } from '../errors/errors.js';
import { findInstalledPackage, packageEntryFile } from '../plugin/findInstalledPackage.js';

/** The package that keeps studies in an SQLite file, loaded by name: core depends on no workspace package. */
const sqliteStoragePackage = '@open-autoglm/storage-sqlite';

interface SqliteStorageModule {
  readonly SqliteStorage: { open(file: string): StudyStorage };
}

/**
 * Opens (or creates) the study database `file` with `@open-autoglm/storage-sqlite`, looked up
 * from `fromDirs` then from core's own folder. Undefined when the package is not installed and
 * `required` is false; a PluginError with the install command when it is required.
 */
export async function openStudyRecord(file: string, options: { readonly fromDirs: readonly string[]; readonly required: boolean }): Promise<StudyStorage | undefined> {
  const searchDirs = [...options.fromDirs, path.dirname(fileURLToPath(import.meta.url))];
  for (const directory of searchDirs) {
    const installed = await findInstalledPackage(sqliteStoragePackage, directory);
    if (installed === undefined) continue;
    const module = (await import(pathToFileURL(packageEntryFile(installed)).href)) as Partial<SqliteStorageModule>;
    if (module.SqliteStorage === undefined) {
      throw new PluginError(`${sqliteStoragePackage} (${installed.directory}) does not export SqliteStorage. Reinstall it: npm install ${sqliteStoragePackage}`);
    }
    return module.SqliteStorage.open(file);
  }
  if (!options.required) return undefined;
  throw new PluginError(
    `Resuming needs the study database ${file}, kept by ${sqliteStoragePackage}, which is not installed. Install it: npm install ${sqliteStoragePackage}`,
  );
}
