import { DatasetError } from '@open-autoglm/core';
import { type NpyArray, readNpy } from './npy.js';
import { readNpz } from './npz.js';

/**
 * Reads one array named by a path: `data.npy`, or a member of an archive as `data.npz:name`.
 * A bare `data.npz` is accepted when the archive holds one array, or a member named
 * `defaultMember` (`x` for inputs, `y` for labels, as numpy.savez users name them).
 */
export async function readArray(spec: string, options: { defaultMember?: string } = {}): Promise<NpyArray> {
  const match = /^(.*\.npz)(?::([^:/\\]+))?$/i.exec(spec);
  if (match === null) return readNpy(spec);
  const file = match[1] as string;
  const arrays = await readNpz(file);
  const names = [...arrays.keys()];
  const member =
    match[2] ?? (names.length === 1 ? names[0] : options.defaultMember !== undefined && arrays.has(options.defaultMember) ? options.defaultMember : undefined);
  const array = member === undefined ? undefined : arrays.get(member);
  if (array === undefined) {
    const which = match[2] === undefined ? 'which array to use' : `an array "${match[2]}"`;
    throw new DatasetError(
      `Dataset file ${file} does not say ${which}: it holds ${names.length === 0 ? 'no arrays' : names.map((n) => `"${n}"`).join(', ')}. ` +
        `Name the member after a colon, e.g. ${file}:${names[0] ?? 'x'}.`,
      { file },
    );
  }
  return array;
}
