import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetError, FileAccessError } from '@open-autoglm/core';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from './npy.js';
import { readNpz } from './npz.js';

// numpy 2.4: numpy.savez(f, x=[[1.5, -2.25, 3], [4, 5.5, -6.75]] (float32), y=[0, 1] (int64)), stored members.
const NUMPY_SAVEZ =
  'UEsDBC0AAAAAAAAAIQCpMcqQ//////////8FABQAeC5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAzKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAADAPwAAEMAAAEBAAACAQAAAsEAAANjAUEsDBC0AAAAAAAAAIQB+avvJ//////////8FABQAeS5ucHkBABAAkAAAAAAAAACQAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAAAAABAAAAAAAAAFBLAQItAy0AAAAAAAAAIQCpMcqQmAAAAJgAAAAFAAAAAAAAAAAAAACAAQAAAAB4Lm5weVBLAQItAy0AAAAAAAAAIQB+avvJkAAAAJAAAAAFAAAAAAAAAAAAAACAAc8AAAB5Lm5weVBLBQYAAAAAAgACAGYAAACWAQAAAAA=';
// The same arrays with numpy.savez_compressed (deflated members).
const NUMPY_SAVEZ_COMPRESSED =
  'UEsDBC0AAAAIAAAAIQCpMcqQ//////////8FABQAeC5ucHkBABAAmAAAAAAAAABcAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TZqKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgaGA/YMDAIHGBgcHBgYGoB4AxDfOAAAUEsDBC0AAAAIAAAAIQB+avvJ//////////8FABQAeS5ucHkBABAAkAAAAAAAAABJAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6mjoKtQoUAC4GKGCE0gBQSwECLQMtAAAACAAAACEAqTHKkFwAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAeC5ucHlQSwECLQMtAAAACAAAACEAfmr7yUkAAACQAAAABQAAAAAAAAAAAAAAgAGTAAAAeS5ucHlQSwUGAAAAAAIAAgBmAAAAEwEAAAAA';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-npz-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeTemp(name: string, bytes: Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

describe('readNpz', () => {
  it('should read numpy.savez (stored) and numpy.savez_compressed (deflated) archives', async () => {
    for (const [name, base64] of [
      ['stored.npz', NUMPY_SAVEZ],
      ['deflated.npz', NUMPY_SAVEZ_COMPRESSED],
    ] as const) {
      const file = await writeTemp(name, new Uint8Array(Buffer.from(base64, 'base64')));
      const arrays = await readNpz(file);
      expect([...arrays.keys()].sort()).toEqual(['x', 'y']);
      const x = arrays.get('x');
      expect(x?.shape).toEqual([2, 3]);
      expect(Array.from(x?.data as Float32Array)).toEqual([1.5, -2.25, 3, 4, 5.5, -6.75]);
      expect(Array.from(arrays.get('y')?.data as BigInt64Array)).toEqual([0n, 1n]);
      expect(x?.file).toBe(`${file}:x.npy`);
    }
  });

  it('should skip members that are not .npy files', async () => {
    const zip = zipSync({ 'notes.txt': new TextEncoder().encode('hello'), 'a.npy': encodeNpy({ dtype: 'uint8', shape: [2], data: new Uint8Array([7, 9]) }) });
    const arrays = await readNpz(zip, { file: 'mixed.npz' });
    expect([...arrays.keys()]).toEqual(['a']);
  });

  it('should name the member of a malformed array inside an archive', async () => {
    const zip = zipSync({ 'bad.npy': new TextEncoder().encode('not numpy at all') });
    const file = await writeTemp('bad-member.npz', zip);
    await expect(readNpz(file)).rejects.toThrow(new RegExp(`${file.replace(/[.]/g, '\\.')}:bad\\.npy is not a \\.npy file`));
  });

  it('should reject files that are not zip archives, or hold no arrays', async () => {
    const notZip = await writeTemp('plain.npz', encodeNpy({ dtype: 'float32', shape: [1], data: new Float32Array(1) }));
    const error = await readNpz(notZip).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).message).toMatch(/plain\.npz is not a readable \.npz archive.*numpy\.savez/);
    const noArrays = await writeTemp('empty.npz', zipSync({ 'readme.txt': new Uint8Array(3) }));
    await expect(readNpz(noArrays)).rejects.toThrow(/contains no \.npy arrays/);
  });

  it('should reject members compressed with other methods than stored and deflated', async () => {
    const zip = zipSync({ 'x.npy': encodeNpy({ dtype: 'uint8', shape: [1], data: new Uint8Array(1) }) }, { level: 0 });
    const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
    // Mark the member as bzip2 (method 12) in its local and central directory headers.
    view.setUint16(8, 12, true);
    for (let i = 0; i < zip.length - 4; i++) if (view.getUint32(i, true) === 0x02014b50) view.setUint16(i + 10, 12, true);
    const file = await writeTemp('bzip2.npz', zip);
    await expect(readNpz(file)).rejects.toThrow(/x\.npy uses zip compression method 12; only stored and deflated/);
  });

  it('should reject a truncated archive', async () => {
    const bytes = new Uint8Array(Buffer.from(NUMPY_SAVEZ_COMPRESSED, 'base64'));
    const file = await writeTemp('cut.npz', bytes.subarray(0, 200));
    await expect(readNpz(file)).rejects.toThrow(DatasetError);
  });

  it('should report a missing file as a FileAccessError', async () => {
    await expect(readNpz(path.join(dir, 'missing.npz'))).rejects.toThrow(FileAccessError);
  });
});
