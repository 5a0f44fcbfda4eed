import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recoverOutputFolder, replaceOutputFolder } from './replaceOutputFolder.js';

describe('replaceOutputFolder', () => {
  let dir: string;
  let folder: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'autoglm-replace-'));
    folder = path.join(dir, 'pareto');
    await mkdir(folder);
    await writeFile(path.join(folder, 'trial-0.onnx'), 'old 0');
    await writeFile(path.join(folder, 'trial-1.onnx'), 'old 1');
    await writeFile(path.join(dir, 'new-2'), 'new 2');
    await writeFile(path.join(dir, 'new-3'), 'new 3');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const contents = async (): Promise<Record<string, string>> =>
    Object.fromEntries(await Promise.all((await readdir(folder)).sort().map(async (name) => [name, await readFile(path.join(folder, name), 'utf8')] as const)));

  it('should replace the folder by the new set and leave nothing else behind', async () => {
    await replaceOutputFolder(folder, new Map([['trial-2.onnx', path.join(dir, 'new-2')], ['trial-3.onnx', path.join(dir, 'new-3')]]));
    expect(await contents()).toEqual({ 'trial-2.onnx': 'new 2', 'trial-3.onnx': 'new 3' });
    expect((await readdir(dir)).sort()).toEqual(['new-2', 'new-3', 'pareto']);
  });

  it('should keep the old set complete when writing the new one fails part way', async () => {
    const files = new Map([['trial-2.onnx', path.join(dir, 'new-2')], ['trial-3.onnx', path.join(dir, 'missing')]]);
    await expect(replaceOutputFolder(folder, files)).rejects.toThrow(/^Cannot write .*pareto: .*the previous pareto\/ was kept/);
    expect(await contents()).toEqual({ 'trial-0.onnx': 'old 0', 'trial-1.onnx': 'old 1' });
    expect((await readdir(dir)).sort()).toEqual(['new-2', 'new-3', 'pareto']);
  });

  it('should put the old set back after a kill between the renames, and clean a killed run\'s temporary folder', async () => {
    // What a kill after `pareto -> .pareto.old` and before `tmp -> pareto` leaves.
    await rm(folder, { recursive: true });
    await mkdir(path.join(dir, '.pareto.old'));
    await writeFile(path.join(dir, '.pareto.old', 'trial-0.onnx'), 'old 0');
    await mkdir(path.join(dir, '.pareto.0a1b2c.tmp'));
    await writeFile(path.join(dir, '.pareto.0a1b2c.tmp', 'trial-2.onnx'), 'half');
    await recoverOutputFolder(folder);
    expect(await contents()).toEqual({ 'trial-0.onnx': 'old 0' });
    expect((await readdir(dir)).sort()).toEqual(['new-2', 'new-3', 'pareto']);
  });

  it('should remove a leftover old folder when the swap had completed', async () => {
    await mkdir(path.join(dir, '.pareto.old'));
    await replaceOutputFolder(folder, new Map([['trial-2.onnx', path.join(dir, 'new-2')]]));
    expect(await contents()).toEqual({ 'trial-2.onnx': 'new 2' });
    expect(existsSync(path.join(dir, '.pareto.old'))).toBe(false);
  });

  it('should create the folder when there was none', async () => {
    await rm(folder, { recursive: true });
    await replaceOutputFolder(folder, new Map([['trial-2.onnx', path.join(dir, 'new-2')]]));
    expect(await contents()).toEqual({ 'trial-2.onnx': 'new 2' });
  });
});
