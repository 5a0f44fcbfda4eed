import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileAccessError } from '../errors/errors.js';

/**
 * Writes `data` to `file` atomically (a temporary file in the same folder, then a rename), so a
 * reader or a run killed mid-write sees the old file or the new one, never half of one.
 */
export async function writeOutputFile(file: string, data: Uint8Array | string): Promise<void> {
  const folder = path.dirname(file);
  const temporary = path.join(folder, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(folder, { recursive: true });
    await writeFile(temporary, data);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new FileAccessError(
      `Cannot write ${file}: ${error instanceof Error ? error.message : String(error)}. Check that the output folder is writable and the disk has space.`,
      { cause: error, file },
    );
  }
}
