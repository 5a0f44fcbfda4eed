import { readFile } from 'node:fs/promises';
import { DatasetError, FileAccessError } from '@open-autoglm/core';
import { unzipSync } from 'fflate';
import { type NpyArray, parseNpy } from './npy.js';

const STORED = 0;
const DEFLATED = 8;

/**
 * Reads the arrays of an .npz archive (numpy.savez / savez_compressed: a zip of .npy members,
 * stored or deflated), keyed by member name without `.npy`. Members that are not .npy files are
 * skipped. Each array is a view on its decompressed member when aligned (no further copy).
 */
export async function readNpz(source: string | Uint8Array, options: { file?: string } = {}): Promise<Map<string, NpyArray>> {
  const file = typeof source === 'string' ? source : options.file;
  const label = file ?? 'The in-memory .npz data';
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = await readFile(source);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new FileAccessError(
        `Dataset file ${file} ${code === 'ENOENT' ? 'does not exist' : 'cannot be read'}. Check the path and its permissions.`,
        { cause: error, file },
      );
    }
  } else {
    bytes = source;
  }
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, {
      filter: (entry) => {
        if (!entry.name.endsWith('.npy')) return false;
        if (entry.compression !== STORED && entry.compression !== DEFLATED) {
          throw new DatasetError(
            `${label}: member ${entry.name} uses zip compression method ${entry.compression}; ` +
              'only stored and deflated members are supported. Re-save with numpy.savez or numpy.savez_compressed.',
            { file },
          );
        }
        return true;
      },
    });
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      `${label} is not a readable .npz archive (${(error as Error).message}). ` +
        'Save it with numpy.savez or numpy.savez_compressed, and check that it was not truncated.',
      { cause: error, file },
    );
  }
  const arrays = new Map<string, NpyArray>();
  for (const [name, member] of Object.entries(members)) {
    arrays.set(name.slice(0, -'.npy'.length), parseNpy(member, file === undefined ? undefined : `${file}:${name}`));
  }
  if (arrays.size === 0) {
    throw new DatasetError(
      `${label} contains no .npy arrays. Save arrays with numpy.savez(path, x=..., y=...).`,
      { file },
    );
  }
  return arrays;
}
