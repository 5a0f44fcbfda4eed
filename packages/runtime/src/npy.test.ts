import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetError, FileAccessError } from '@open-autoglm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy, type NpyArray, type NpyDType, parseNpy, readNpy, SUPPORTED_NPY_DTYPES, writeNpy } from './npy.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;

// Written by numpy 2.4 (numpy.lib.format.write_array) for [[1.5, -2.25, 3], [4, 5.5, -6.75]] float32.
const NUMPY_V1 =
  'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAQwAAAQEAAAIBAAACwQAAA2MA=';
const NUMPY_V2 =
  'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAQwAAAQEAAAIBAAACwQAAA2MA=';
const NUMPY_V3 =
  'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAQwAAAQEAAAIBAAACwQAAA2MA=';
// numpy int64 [9007199254740993, -1, 7]: beyond float64 precision, so it checks exact bigint reads.
const NUMPY_INT64 =
  'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAAAAAgAP//////////BwAAAAAAAAA=';
const EXPECTED_F32 = [1.5, -2.25, 3, 4, 5.5, -6.75];

const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** A .npy v1 file with a hand-written header and `dataBytes` bytes of data. */
function handMadeNpy(header: string, dataBytes: number): Uint8Array {
  const preamble = 10;
  const padded = header.padEnd(Math.ceil((preamble + header.length + 1) / 64) * 64 - preamble - 1, ' ') + '\n';
  const out = new Uint8Array(preamble + padded.length + dataBytes);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, padded.length, true);
  out.set(Buffer.from(padded, 'latin1'), preamble);
  return out;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeTemp(name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

async function readError(bytes: Uint8Array, name: string): Promise<DatasetError> {
  const file = await writeTemp(name, bytes);
  const error = await readNpy(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  expect((error as DatasetError).file).toBe(file);
  expect((error as DatasetError).message).toContain(file);
  // Parsing the same bytes in memory must fail the same way.
  expect(() => parseNpy(bytes, file)).toThrow(DatasetError);
  return error as DatasetError;
}

describe('readNpy', () => {
  it('should read numpy-written format 1.0, 2.0 and 3.0 files', async () => {
    for (const [name, base64] of [
      ['v1.npy', NUMPY_V1],
      ['v2.npy', NUMPY_V2],
      ['v3.npy', NUMPY_V3],
    ] as const) {
      const array = await readNpy(await writeTemp(name, fromBase64(base64)));
      expect(array.dtype).toBe('float32');
      expect(array.shape).toEqual([2, 3]);
      expect(Array.from(array.data as Float32Array)).toEqual(EXPECTED_F32);
    }
  });

  it('should read int64 exactly as bigint', async () => {
    const array = await readNpy(await writeTemp('i64.npy', fromBase64(NUMPY_INT64)));
    expect(array.dtype).toBe('int64');
    expect(array.shape).toEqual([3]);
    expect(Array.from(array.data as BigInt64Array)).toEqual([9007199254740993n, -1n, 7n]);
  });

  it('should read the fixture split with the shape and label counts of the manifest', async () => {
    const x = await readNpy(fixture('fmnist-val-2k.x.npy'));
    expect(x.dtype).toBe('float32');
    expect(x.shape).toEqual([2000, 1, 28, 28]);
    expect(x.data).toBeInstanceOf(Float32Array);
    expect(x.data.length).toBe(2000 * 784);
    const y = await readNpy(fixture('fmnist-val-2k.y.npy'));
    expect(y.dtype).toBe('int64');
    const counts = new Array<number>(10).fill(0);
    for (const label of y.data as BigInt64Array) counts[Number(label)] = (counts[Number(label)] as number) + 1;
    // manifest.json datasets["fmnist-val-2k"].label_counts
    expect(counts).toEqual([206, 207, 177, 214, 188, 206, 198, 210, 200, 194]);
  });

  it('should round-trip every supported dtype through encodeNpy, files and unaligned bytes', async () => {
    const samples: Record<NpyDType, NpyArray['data']> = {
      float32: new Float32Array([0.5, -1, 3e38]),
      float64: new Float64Array([Math.PI, -0, 1e-300]),
      int8: new Int8Array([-128, 0, 127]),
      int16: new Int16Array([-32768, 1, 32767]),
      int32: new Int32Array([-2147483648, 2, 2147483647]),
      int64: new BigInt64Array([-9223372036854775808n, 3n, 9223372036854775807n]),
      uint8: new Uint8Array([0, 128, 255]),
      uint16: new Uint16Array([0, 1, 65535]),
      uint32: new Uint32Array([0, 1, 4294967295]),
      uint64: new BigUint64Array([0n, 1n, 18446744073709551615n]),
      bool: new Uint8Array([1, 0, 1]),
    };
    expect(Object.keys(samples).sort()).toEqual([...SUPPORTED_NPY_DTYPES].sort());
    for (const dtype of SUPPORTED_NPY_DTYPES) {
      const data = samples[dtype];
      const encoded = encodeNpy({ dtype, shape: [3, 1], data });
      const fromFile = await readNpy(await writeTemp(`${dtype}.npy`, encoded));
      expect(fromFile.dtype).toBe(dtype);
      expect(fromFile.shape).toEqual([3, 1]);
      expect(Array.from(fromFile.data as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
      // Shift by one byte so the data is misaligned for every multi-byte type: it must be copied.
      const shifted = new Uint8Array(encoded.length + 1);
      shifted.set(encoded, 1);
      const fromBytes = parseNpy(shifted.subarray(1));
      expect(Array.from(fromBytes.data as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
    }
  });

  it('should describe in-memory bytes without inventing a file name', () => {
    const error = (() => {
      try {
        parseNpy(new Uint8Array(16));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).file).toBeUndefined();
    expect((error as Error).message).toMatch(/^The in-memory \.npy data is not a \.npy file/);
  });

  it('should return a view, not a copy, for aligned bytes', () => {
    const bytes = fromBase64(NUMPY_V1);
    const array = parseNpy(bytes);
    expect(array.data.buffer).toBe(bytes.buffer);
    expect(array.file).toBeUndefined();
  });

  it('should read a zero-size array and a scalar', async () => {
    const empty = await readNpy(await writeTemp('empty.npy', encodeNpy({ dtype: 'float32', shape: [0, 4], data: new Float32Array(0) })));
    expect(empty.shape).toEqual([0, 4]);
    expect(empty.data.length).toBe(0);
    const scalar = parseNpy(handMadeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8));
    expect(scalar.shape).toEqual([]);
    expect(scalar.data.length).toBe(1);
  });

  it('should accept Fortran order when at most one axis is longer than 1', () => {
    const array = parseNpy(handMadeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 5), }", 20));
    expect(array.shape).toEqual([1, 5]);
  });

  it('should write files that its reader reads back (writeNpy)', async () => {
    const file = path.join(dir, 'written.npy');
    await writeNpy(file, { dtype: 'float32', shape: [2, 3], data: new Float32Array(EXPECTED_F32) });
    expect(Array.from((await readNpy(file)).data as Float32Array)).toEqual(EXPECTED_F32);
  });

  it('should refuse to encode data that does not fit the dtype or shape', () => {
    expect(() => encodeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) })).toThrow(/8 bytes, not 4/);
    expect(() => encodeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) })).toThrow(/holds 4/);
  });

  it('should report a missing file as a FileAccessError naming it', async () => {
    const missing = path.join(dir, 'nope.npy');
    await expect(readNpy(missing)).rejects.toThrow(FileAccessError);
    await expect(readNpy(missing)).rejects.toThrow(/nope\.npy does not exist/);
  });

  it('should reject a file without the magic bytes', async () => {
    const error = await readError(new TextEncoder().encode('x,y\n1,2\n'), 'csv.npy');
    expect(error.message).toMatch(/not a \.npy file.*numpy\.save/);
  });

  it('should reject a file truncated inside the header', async () => {
    const error = await readError(fromBase64(NUMPY_V1).subarray(0, 40), 'cut-header.npy');
    expect(error.message).toMatch(/truncated inside its \.npy header/);
    const tiny = await readError(fromBase64(NUMPY_V2).subarray(0, 10), 'cut-preamble.npy');
    expect(tiny.message).toMatch(/truncated/);
  });

  it('should reject an unparsable header dict', async () => {
    const error = await readError(handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", 24), 'bad-dict.npy');
    expect(error.message).toMatch(/unreadable \.npy header \(it is not a Python dict literal/);
    const keys = await readError(handMadeNpy("{'descr': '<f4', 'shape': (6,), }", 24), 'bad-keys.npy');
    expect(keys.message).toMatch(/keys \[descr, shape\]/);
    const shape = await readError(handMadeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24), 'bad-shape.npy');
    expect(shape.message).toMatch(/shape is not a tuple of non-negative integers/);
  });

  it('should name an unsupported dtype and list the supported ones', async () => {
    for (const descr of ['<f2', '<c8', '<U4', '|S3', '<M8[ns]']) {
      const error = await readError(handMadeNpy(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`, 16), 'dtype.npy');
      expect(error.message).toContain(`element type '${descr}'`);
      expect(error.message).toContain("float32 ('<f4')");
      expect(error.message).toContain("int64 ('<i8')");
    }
  });

  it('should reject big-endian data with the conversion to apply', async () => {
    const error = await readError(handMadeNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), 'be.npy');
    expect(error.message).toMatch(/big-endian.*newbyteorder\('<'\)/);
  });

  it('should reject object and structured arrays', async () => {
    const object = await readError(handMadeNpy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16), 'obj.npy');
    expect(object.message).toMatch(/object array.*astype/);
    const record = await readError(
      handMadeNpy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", 16),
      'rec.npy',
    );
    expect(record.message).toMatch(/structured \(record\) array/);
  });

  it('should reject Fortran-ordered matrices, saying to save in C order', async () => {
    const error = await readError(handMadeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24), 'fortran.npy');
    expect(error.message).toMatch(/Fortran.*ascontiguousarray/);
  });

  it('should reject data shorter than the shape says, and unexplained trailing bytes', async () => {
    const full = fromBase64(NUMPY_V1);
    const short = await readError(full.subarray(0, full.length - 4), 'short.npy');
    expect(short.message).toMatch(/truncated: its header says float32 with shape \(2, 3\), i\.e\. 24 bytes of data, but only 20/);
    const long = new Uint8Array(full.length + 8);
    long.set(full);
    const trailing = await readError(long, 'long.npy');
    expect(trailing.message).toMatch(/8 unexpected bytes after its data/);
  });

  it('should reject an unknown format version and an absurd header length', async () => {
    const v9 = fromBase64(NUMPY_V1);
    v9[6] = 9;
    expect((await readError(v9, 'v9.npy')).message).toMatch(/format version 9\.0/);
    const huge = fromBase64(NUMPY_V2);
    new DataView(huge.buffer).setUint32(8, 0x7fffffff, true);
    expect((await readError(huge, 'huge.npy')).message).toMatch(/not plausible/);
  });
});
