import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { FileAccessError } from '../errors/errors.js';

/**
 * Replaces `folder` by one holding `files` (name in the folder -> file to copy) so that a run
 * killed at any point leaves the old set or the new set complete, never part of one: the new set
 * is written into a temporary sibling (`.<name>.<random>.tmp`), then the old folder is renamed to
 * `.<name>.old`, the new one to `<name>`, and the old one removed. A kill between the two renames
 * leaves the old set complete in `.<name>.old`, which `recoverOutputFolder` (called first here, and
 * by the pipeline when a run starts) puts back. On error the old folder is kept as it was.
 */
export async function replaceOutputFolder(folder: string, files: ReadonlyMap<string, string>): Promise<void> {
  await recoverOutputFolder(folder);
  const parent = path.dirname(folder);
  const name = path.basename(folder);
  const temporary = path.join(parent, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const old = path.join(parent, `.${name}.old`);
  try {
    await mkdir(temporary, { recursive: true });
    for (const [file, source] of files) await copyFile(source, path.join(temporary, file));
    const hadOld = await rename(folder, old).then(
      () => true,
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      },
    );
    await rename(temporary, folder);
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw new FileAccessError(
      `Cannot write ${folder}: ${error instanceof Error ? error.message : String(error)}. Check that the output folder is writable and the disk has space; the previous ${name}/ was kept.`,
      { cause: error, file: folder },
    );
  }
}

/**
 * Undoes what a run killed inside `replaceOutputFolder` left: puts `.<name>.old` back when `<name>`
 * is missing (killed between the renames), else removes it, and removes temporary `.<name>.*.tmp`
 * folders.
 */
export async function recoverOutputFolder(folder: string): Promise<void> {
  const parent = path.dirname(folder);
  const name = path.basename(folder);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new FileAccessError(`Cannot read the output folder ${parent}: ${error instanceof Error ? error.message : String(error)}. Check its permissions.`, { cause: error, file: parent });
  }
  const old = `.${name}.old`;
  if (entries.includes(old)) {
    if (entries.includes(name)) await rm(path.join(parent, old), { recursive: true, force: true });
    else await rename(path.join(parent, old), folder);
  }
  const temporary = new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]+\\.tmp$`);
  for (const entry of entries.filter((e) => temporary.test(e))) await rm(path.join(parent, entry), { recursive: true, force: true });
}
