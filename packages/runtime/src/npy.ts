import { open, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { DatasetError, FileAccessError } from '@open-autoglm/core';
import type { TensorArray } from '@open-autoglm/onnx';
import { parsePythonLiteral, type PythonLiteral, PythonLiteralSyntaxError } from './pythonLiteral.js';

/** Element types read from .npy files; the names are onnxruntime's tensor type names. */
export type NpyDType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool';

/** A C-order array read from a .npy file (or .npz member). */
export interface NpyArray {
  readonly dtype: NpyDType;
  readonly shape: readonly number[];
  /** The elements in C (row-major) order; bool is one byte per element (0 or 1). */
  readonly data: TensorArray;
  /** The file it was read from (`archive.npz:member` for .npz members), for messages. */
  readonly file: string | undefined;
}

interface DTypeInfo {
  readonly dtype: NpyDType;
  readonly descr: string;
  readonly bytes: number;
  readonly view: (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorArray;
}

const DTYPES: readonly DTypeInfo[] = [
  { dtype: 'float32', descr: '<f4', bytes: 4, view: (b, o, n) => new Float32Array(b, o, n) },
  { dtype: 'float64', descr: '<f8', bytes: 8, view: (b, o, n) => new Float64Array(b, o, n) },
  { dtype: 'int8', descr: '|i1', bytes: 1, view: (b, o, n) => new Int8Array(b, o, n) },
  { dtype: 'int16', descr: '<i2', bytes: 2, view: (b, o, n) => new Int16Array(b, o, n) },
  { dtype: 'int32', descr: '<i4', bytes: 4, view: (b, o, n) => new Int32Array(b, o, n) },
  { dtype: 'int64', descr: '<i8', bytes: 8, view: (b, o, n) => new BigInt64Array(b, o, n) },
  { dtype: 'uint8', descr: '|u1', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
  { dtype: 'uint16', descr: '<u2', bytes: 2, view: (b, o, n) => new Uint16Array(b, o, n) },
  { dtype: 'uint32', descr: '<u4', bytes: 4, view: (b, o, n) => new Uint32Array(b, o, n) },
  { dtype: 'uint64', descr: '<u8', bytes: 8, view: (b, o, n) => new BigUint64Array(b, o, n) },
  { dtype: 'bool', descr: '|b1', bytes: 1, view: (b, o, n) => new Uint8Array(b, o, n) },
];

/** The element types `readNpy` accepts. */
export const SUPPORTED_NPY_DTYPES: readonly NpyDType[] = DTYPES.map((d) => d.dtype);

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** numpy refuses headers above 10 kB by default; anything near this is not a real .npy header. */
const MAX_HEADER_BYTES = 1 << 20;

/** What error messages call the data, and the file they report (none for in-memory bytes). */
interface NpySource {
  readonly label: string;
  readonly file: string | undefined;
}

/** Where the header sits, from the fixed-size preamble. */
interface NpyPreamble {
  readonly version: number;
  readonly headerStart: number;
  readonly headerLength: number;
}

interface NpyHeader {
  readonly info: DTypeInfo;
  readonly shape: number[];
  readonly count: number;
}

export interface ReadNpyOptions {
  /** For bytes: the file they came from, named in error messages. */
  file?: string;
}

/**
 * Reads a .npy array (format 1.0, 2.0 or 3.0; little-endian; C order). From a path, the data is
 * read straight into one aligned buffer (no second copy). From bytes, the result is a view on
 * them when the data is aligned to its element size, otherwise an aligned copy.
 * Every malformed file gives a DatasetError naming the file and what to do.
 */
export async function readNpy(source: string | Uint8Array, options: ReadNpyOptions = {}): Promise<NpyArray> {
  if (typeof source !== 'string') return parseNpy(source, options.file);
  const file = source;
  const src: NpySource = { label: file, file };
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileAccessError(
      `Dataset file ${file} ${code === 'ENOENT' ? 'does not exist' : 'cannot be opened'}. Check the path and its permissions.`,
      { cause: error, file },
    );
  }
  try {
    const { size } = await handle.stat();
    const preamble = parsePreamble(await readExactly(handle, 0, Math.min(size, 12)), src);
    const headerEnd = preamble.headerStart + preamble.headerLength;
    if (size < headerEnd) throw truncatedHeader(src, size, headerEnd);
    const header = parseHeader(await readExactly(handle, preamble.headerStart, preamble.headerLength), preamble, src);
    const dataBytes = header.count * header.info.bytes;
    checkDataLength(size - headerEnd, dataBytes, header, src);
    const buffer = new ArrayBuffer(dataBytes);
    await readInto(handle, new Uint8Array(buffer), headerEnd);
    return { dtype: header.info.dtype, shape: header.shape, data: header.info.view(buffer, 0, header.count), file };
  } finally {
    await handle.close();
  }
}

/**
 * Parses .npy bytes already in memory. The returned data is a view on `bytes` when aligned
 * (so it changes if `bytes` does), otherwise an aligned copy.
 */
export function parseNpy(bytes: Uint8Array, file?: string): NpyArray {
  const src: NpySource = { label: file ?? 'The in-memory .npy data', file };
  const preamble = parsePreamble(bytes.subarray(0, 12), src);
  const headerEnd = preamble.headerStart + preamble.headerLength;
  if (bytes.length < headerEnd) throw truncatedHeader(src, bytes.length, headerEnd);
  const header = parseHeader(bytes.subarray(preamble.headerStart, headerEnd), preamble, src);
  const dataBytes = header.count * header.info.bytes;
  checkDataLength(bytes.length - headerEnd, dataBytes, header, src);
  const offset = bytes.byteOffset + headerEnd;
  let data: TensorArray;
  if (offset % header.info.bytes === 0) {
    data = header.info.view(bytes.buffer, offset, header.count);
  } else {
    const copy = new Uint8Array(dataBytes);
    copy.set(bytes.subarray(headerEnd, headerEnd + dataBytes));
    data = header.info.view(copy.buffer, 0, header.count);
  }
  return { dtype: header.info.dtype, shape: header.shape, data, file };
}

function parsePreamble(prefix: Uint8Array, src: NpySource): NpyPreamble {
  if (prefix.length < 8 || MAGIC.some((byte, i) => prefix[i] !== byte)) {
    throw new DatasetError(
      `${src.label} is not a .npy file: it does not start with the magic bytes "\\x93NUMPY". ` +
        'Save arrays with numpy.save (or give an .npz archive to readNpz).',
      { file: src.file },
    );
  }
  const version = prefix[6] as number;
  if (version < 1 || version > 3 || prefix[7] !== 0) {
    throw new DatasetError(
      `${src.label} uses .npy format version ${version}.${String(prefix[7])}; only 1.0, 2.0 and 3.0 are supported. ` +
        'Re-save it with numpy.save.',
      { file: src.file },
    );
  }
  const lengthBytes = version === 1 ? 2 : 4;
  const headerStart = 8 + lengthBytes;
  if (prefix.length < headerStart) throw truncatedHeader(src, prefix.length, headerStart);
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const headerLength = version === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new DatasetError(
      `${src.label} declares a ${headerLength}-byte .npy header, which is not plausible (limit ${MAX_HEADER_BYTES}). ` +
        'The file is corrupt; re-save it with numpy.save.',
      { file: src.file },
    );
  }
  return { version, headerStart, headerLength };
}

function parseHeader(headerBytes: Uint8Array, preamble: NpyPreamble, src: NpySource): NpyHeader {
  const text = new TextDecoder(preamble.version === 3 ? 'utf-8' : 'latin1').decode(headerBytes);
  let literal: PythonLiteral;
  try {
    literal = parsePythonLiteral(text);
  } catch (error) {
    if (!(error instanceof PythonLiteralSyntaxError)) throw error;
    throw badHeader(src, text, `it is not a Python dict literal (${error.message})`, error);
  }
  if (!(literal instanceof Map)) throw badHeader(src, text, 'it is not a dict');
  const keys = [...literal.keys()].sort();
  if (keys.join(',') !== 'descr,fortran_order,shape') {
    throw badHeader(src, text, `it has the keys [${keys.join(', ')}] instead of descr, fortran_order and shape`);
  }
  const descr = literal.get('descr');
  const fortranOrder = literal.get('fortran_order');
  const shape = literal.get('shape');
  if (typeof fortranOrder !== 'boolean') throw badHeader(src, text, 'fortran_order is not True or False');
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw badHeader(src, text, 'shape is not a tuple of non-negative integers');
  }
  const dims = shape as number[];
  const info = dtypeOf(descr, src);
  if (fortranOrder && dims.filter((d) => d > 1).length > 1) {
    throw new DatasetError(
      `${src.label} stores its array in Fortran (column-major) order, which is not supported. ` +
        'Save it in C order: numpy.save(path, numpy.ascontiguousarray(array)).',
      { file: src.file },
    );
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * info.bytes)) {
    throw badHeader(src, text, `shape (${dims.join(', ')}) is too large to hold in memory`);
  }
  return { info, shape: dims, count };
}

function dtypeOf(descr: PythonLiteral | undefined, src: NpySource): DTypeInfo {
  const supported = `Supported: ${DTYPES.map((d) => `${d.dtype} ('${d.descr}')`).join(', ')}.`;
  if (typeof descr !== 'string') {
    throw new DatasetError(
      `${src.label} holds a structured (record) array, which is not supported. ` +
        `Save each field as its own plain array. ${supported}`,
      { file: src.file },
    );
  }
  const match = /^([<>|=])?([a-zA-Z])(\d*)/.exec(descr);
  const order = match?.[1] ?? '|';
  const kind = match?.[2];
  const size = Number(match?.[3] ?? '');
  if (kind === 'O') {
    throw new DatasetError(
      `${src.label} holds an object array (dtype 'O': Python objects, pickled), which cannot be read safely. ` +
        'Convert it to a numeric array before saving, e.g. numpy.save(path, array.astype(numpy.float32)).',
      { file: src.file },
    );
  }
  if (order === '>' && size > 1) {
    throw new DatasetError(
      `${src.label} is big-endian (dtype '${descr}'); only little-endian data is supported. ` +
        "Convert it before saving: numpy.save(path, array.astype(array.dtype.newbyteorder('<'))).",
      { file: src.file },
    );
  }
  // '=' is the writer's native order: numpy writes '<' or '>' itself, so this only comes from hand-made files.
  const littleEndian = size === 1 || order === '<' || (order === '=' && endianness() === 'LE');
  const wanted = `${kind ?? ''}${size}`;
  const info = littleEndian ? DTYPES.find((d) => d.descr.slice(1) === wanted) : undefined;
  if (info === undefined || match?.[0] !== descr) {
    throw new DatasetError(`${src.label} has element type '${descr}', which is not supported. ${supported}`, { file: src.file });
  }
  return info;
}

function checkDataLength(available: number, needed: number, header: NpyHeader, src: NpySource): void {
  if (available === needed) return;
  const what = `its header says ${header.info.dtype} with shape (${header.shape.join(', ')}), i.e. ${needed} bytes of data`;
  if (available < needed) {
    throw new DatasetError(
      `${src.label} is truncated: ${what}, but only ${available} bytes follow the header. ` +
        'The file was cut short (interrupted copy or download); re-create or re-download it.',
      { file: src.file },
    );
  }
  throw new DatasetError(
    `${src.label} has ${available - needed} unexpected bytes after its data: ${what}, but ${available} follow the header. ` +
      'The header does not describe the data (wrong dtype or shape); re-save the array with numpy.save.',
    { file: src.file },
  );
}

function truncatedHeader(src: NpySource, size: number, needed: number): DatasetError {
  return new DatasetError(
    `${src.label} is truncated inside its .npy header (${size} bytes, the header needs ${needed}). ` +
      'Re-create or re-download the file.',
    { file: src.file },
  );
}

function badHeader(src: NpySource, text: string, why: string, cause?: unknown): DatasetError {
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return new DatasetError(
    `${src.label} has an unreadable .npy header (${why}): ${JSON.stringify(shown.trimEnd())}. ` +
      'The file is corrupt or was not written by numpy; re-save the array with numpy.save.',
    { file: src.file, cause },
  );
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await readInto(handle, out, position);
  return out;
}

async function readInto(handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let filled = 0;
  while (filled < target.length) {
    const { bytesRead } = await handle.read(target, filled, target.length - filled, position + filled);
    if (bytesRead === 0) break; // the file shrank while being read; the length checks already passed
    filled += bytesRead;
  }
}

/** Serializes an array as a .npy (format 1.0, or 2.0 for headers over 64 kB), data 64-byte aligned. */
export function encodeNpy(array: Pick<NpyArray, 'dtype' | 'shape' | 'data'>): Uint8Array {
  const info = DTYPES.find((d) => d.dtype === array.dtype);
  if (info === undefined) throw new DatasetError(`Cannot encode dtype ${String(array.dtype)} as .npy.`);
  if (array.data.BYTES_PER_ELEMENT !== info.bytes) {
    throw new DatasetError(
      `Cannot save a ${array.data.constructor.name} as ${info.dtype}: its elements are ${array.data.BYTES_PER_ELEMENT} bytes, not ${info.bytes}.`,
    );
  }
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) {
    throw new DatasetError(
      `Cannot save ${array.data.length} elements as shape (${array.shape.join(', ')}), which holds ${count}.`,
    );
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let dict = `{'descr': '${info.descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const version = dict.length + 11 > 0xffff ? 2 : 1;
  const preamble = version === 1 ? 10 : 12;
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - preamble - 1, ' ') + '\n';
  const out = new Uint8Array(total + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = version;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), preamble);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), total);
  return out;
}

/** Writes an array to a .npy file (see encodeNpy). */
export async function writeNpy(file: string, array: Pick<NpyArray, 'dtype' | 'shape' | 'data'>): Promise<void> {
  try {
    await writeFile(file, encodeNpy(array));
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new FileAccessError(`Cannot write ${file}: ${(error as Error).message}. Check the folder exists and is writable.`, {
      cause: error,
      file,
    });
  }
}
