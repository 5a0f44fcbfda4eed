import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { FileAccessError } from '@open-autoglm/core';

/** One file to write: its path and its content as one buffer or a sequence of chunks. */
export interface AtomicFile {
  readonly path: string;
  readonly data: Uint8Array | Iterable<Uint8Array>;
}

/**
 * Writes a file so that readers see either the old content or the complete new one, never a
 * partial file: the data goes to a temporary file in the same folder, is flushed to disk
 * (fsync), then renamed over the target, and the folder entry is flushed too. On failure the
 * temporary file is removed and the target is left as it was.
 */
export async function writeFileAtomic(filePath: string, data: Uint8Array | Iterable<Uint8Array>): Promise<void> {
  await writeFilesAtomic([{ path: filePath, data }]);
}

/**
 * Writes several files, each atomically, renaming them into place in the given order only after
 * all of them are written and flushed (so a model file is renamed after the data file it
 * refers to). The set as a whole is not atomic: if a rename fails midway, earlier files are
 * already replaced. Targets are checked up front to make that unlikely.
 */
export async function writeFilesAtomic(files: readonly AtomicFile[]): Promise<void> {
  const existing: (Stats | undefined)[] = [];
  for (const file of files) existing.push(await checkTarget(file.path));
  const temporaries: string[] = [];
  try {
    for (const [i, file] of files.entries()) {
      const temporary = temporaryPathFor(file.path);
      temporaries.push(temporary);
      // A replaced file keeps its permission bits.
      await writeAndFlush(temporary, file.path, file.data, existing[i]?.mode);
    }
    for (const [i, file] of files.entries()) {
      const temporary = temporaries[i] as string;
      try {
        await rename(temporary, file.path);
      } catch (error) {
        throw new FileAccessError(
          `Cannot move the new content into place at "${file.path}": ${describeSystemError(error)}. ` +
            'Check that the folder is writable and the path is not a folder.',
          { cause: error, file: file.path },
        );
      }
      temporaries[i] = '';
    }
    for (const folder of new Set(files.map((file) => path.dirname(path.resolve(file.path))))) await flushFolder(folder);
  } finally {
    for (const temporary of temporaries) if (temporary !== '') await unlink(temporary).catch(() => undefined);
  }
}

/** Fails early on targets that cannot be written; returns the stats of an existing target. */
async function checkTarget(filePath: string): Promise<Stats | undefined> {
  const folder = path.dirname(path.resolve(filePath));
  const folderStats = await stat(folder).catch((error: unknown) => {
    throw new FileAccessError(
      `Cannot write "${filePath}": its folder "${folder}" ` +
        `${isMissing(error) ? 'does not exist' : `cannot be read (${describeSystemError(error)})`}. ` +
        'Create the folder first or choose another output path.',
      { cause: error, file: filePath },
    );
  });
  if (!folderStats.isDirectory()) {
    throw new FileAccessError(`Cannot write "${filePath}": "${folder}" is not a folder. Choose another output path.`, { file: filePath });
  }
  const targetStats = await stat(filePath).catch(() => undefined);
  if (targetStats !== undefined && !targetStats.isFile()) {
    throw new FileAccessError(`Cannot write "${filePath}": a folder or special file is in the way. Choose another output path.`, {
      file: filePath,
    });
  }
  return targetStats;
}

/** A fresh name next to the target, hidden and unique, so the final rename stays on one file system. */
function temporaryPathFor(filePath: string): string {
  const resolved = path.resolve(filePath);
  return path.join(path.dirname(resolved), `.${path.basename(resolved)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

async function writeAndFlush(
  temporary: string,
  target: string,
  data: Uint8Array | Iterable<Uint8Array>,
  mode: number | undefined,
): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx');
    if (mode !== undefined) await handle.chmod(mode & 0o7777);
    const chunks = data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
        written += bytesWritten;
      }
    }
    await handle.sync();
  } catch (error) {
    // Only system errors are about the file; anything else (e.g. from a chunk generator) passes through.
    if ((error as NodeJS.ErrnoException | undefined)?.code === undefined) throw error;
    throw new FileAccessError(
      `Cannot write "${target}": ${describeSystemError(error)}. Check free disk space and that the folder is writable; ` +
        'the previous file (if any) was left unchanged.',
      { cause: error, file: target },
    );
  } finally {
    await handle?.close();
  }
}

/** Makes the renames durable; folders cannot be opened for syncing on every platform, so failures are ignored. */
async function flushFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch {
    // Windows and some file systems refuse fsync on a directory; the data itself is already flushed.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function describeSystemError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code === undefined ? message : `${code} (${message})`;
}
