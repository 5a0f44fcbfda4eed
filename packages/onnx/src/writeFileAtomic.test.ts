import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileAccessError } from '@open-autoglm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFilesAtomic } from './writeFileAtomic.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'atomic-write-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('should write a new file from one buffer or from chunks, leaving nothing else behind', async () => {
    const folder = await mkdtemp(path.join(tmp, 'new-'));
    await writeFileAtomic(path.join(folder, 'one.bin'), Uint8Array.from([1, 2, 3]));
    await writeFileAtomic(path.join(folder, 'two.bin'), [Uint8Array.from([4]), new Uint8Array(0), Uint8Array.from([5, 6])]);
    expect((await readdir(folder)).sort()).toEqual(['one.bin', 'two.bin']);
    expect([...(await readFile(path.join(folder, 'two.bin')))]).toEqual([4, 5, 6]);
  });

  it('should replace a larger existing file completely, keeping its permissions', async () => {
    const file = path.join(tmp, 'replace.bin');
    await writeFile(file, Buffer.alloc(1 << 20, 7), { mode: 0o640 });
    await chmod(file, 0o640);
    await writeFileAtomic(file, Uint8Array.from([9, 9]));
    expect([...(await readFile(file))]).toEqual([9, 9]);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it('should keep the old file and remove the temporary one when writing fails midway', async () => {
    const folder = await mkdtemp(path.join(tmp, 'fail-'));
    const file = path.join(folder, 'model.onnx');
    await writeFile(file, 'old content');
    function* failingChunks(): Generator<Uint8Array> {
      yield new Uint8Array(100_000);
      throw new Error('producer broke');
    }
    await expect(writeFileAtomic(file, failingChunks())).rejects.toThrow('producer broke');
    expect(await readFile(file, 'utf8')).toBe('old content');
    expect(await readdir(folder)).toEqual(['model.onnx']);
  });

  it('should refuse a missing folder and a folder in the way, naming the path', async () => {
    const missing = path.join(tmp, 'missing', 'out.bin');
    const error = await writeFileAtomic(missing, new Uint8Array(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileAccessError);
    expect((error as FileAccessError).file).toBe(missing);
    expect((error as Error).message).toMatch(/its folder ".*missing" does not exist\. Create the folder first/);

    const blocked = path.join(tmp, 'blocked');
    await mkdir(blocked);
    await expect(writeFileAtomic(blocked, new Uint8Array(1))).rejects.toThrow(/a folder or special file is in the way/);
    expect(await readdir(blocked)).toEqual([]);
  });
});

describe('writeFilesAtomic', () => {
  it('should write every file, or none when one target is unusable', async () => {
    const folder = await mkdtemp(path.join(tmp, 'pair-'));
    await writeFilesAtomic([
      { path: path.join(folder, 'a.data'), data: Uint8Array.from([1]) },
      { path: path.join(folder, 'a.onnx'), data: Uint8Array.from([2]) },
    ]);
    expect((await readdir(folder)).sort()).toEqual(['a.data', 'a.onnx']);

    await mkdir(path.join(folder, 'b.onnx'));
    await expect(
      writeFilesAtomic([
        { path: path.join(folder, 'b.data'), data: Uint8Array.from([1]) },
        { path: path.join(folder, 'b.onnx'), data: Uint8Array.from([2]) },
      ]),
    ).rejects.toThrow(FileAccessError);
    expect((await readdir(folder)).sort()).toEqual(['a.data', 'a.onnx', 'b.onnx']);
  });
});
