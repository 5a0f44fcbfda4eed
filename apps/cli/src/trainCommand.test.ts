import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The runtime's own training test problem (not exported: test support stays out of the package).
import { type MlpTrainingFiles, writeMlpTrainingFiles } from '../../../packages/runtime/src/training/test-support/mlpTrainingFiles.js';
import { runCli } from './runCli.js';

const binary = fileURLToPath(new URL('../bin/autoglm.js', import.meta.url));

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('autoglm train', () => {
  let dir: string;
  let files: MlpTrainingFiles;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-train-cli-'));
    files = await writeMlpTrainingFiles(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should train, evaluate every epoch and print one JSON document', async () => {
    const out = path.join(dir, 'trained.onnx');
    const { code, stdout, stderr } = await run(
      'train', files.model, '--data', files.trainX, '--labels', files.trainY, '--val-data', files.valX, '--val-labels', files.valY,
      '--epochs', '3', '--batch', '16', '--lr', '0.01', '--optimizer', 'adamw', '--reinit', '--seed', '4', '--out', out, '--json',
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { output: string; finalLoss: number; validationAccuracy: number[]; samplesPerSecond: number; steps: number; checkpoint: null };
    expect(report).toMatchObject({ output: out, steps: 18, checkpoint: null });
    expect(report.validationAccuracy).toHaveLength(3);
    expect(report.validationAccuracy[2]).toBeGreaterThan(0.9);
    expect(report.samplesPerSecond).toBeGreaterThan(0);
    await access(out);
    // The automatic checkpoint (<out>.ckpt) is removed once training completes.
    await expect(access(`${out}.ckpt`)).rejects.toThrow();
  });

  it('should refuse bad input with one clear message and write nothing', async () => {
    const before = await readdir(dir);
    const out = path.join(dir, 'never.onnx');
    const unpaired = await run('train', files.model, '--data', files.trainX, '--labels', files.trainY, '--val-data', files.valX, '--out', out);
    expect(unpaired.code).toBe(1);
    expect(unpaired.stderr).toContain('Give --val-data and --val-labels together');
    const missing = path.join(dir, 'missing.npy');
    const noData = await run('train', files.model, '--data', missing, '--labels', files.trainY, '--out', out);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toContain(`Dataset file ${missing} does not exist`);
    expect(noData.stderr.trim().split('\n')).toHaveLength(1);
    const badLr = await run('train', files.model, '--data', files.trainX, '--labels', files.trainY, '--lr', '-1', '--out', out);
    expect(badLr.code).toBe(2);
    expect(await readdir(dir)).toEqual(before);
  });

  it('should stop on Ctrl-C with a checkpoint that the built binary resumes from', async () => {
    const out = path.join(dir, 'interrupted.onnx');
    const checkpoint = path.join(dir, 'interrupted.ckpt');
    const args = ['train', files.model, '--data', files.trainX, '--labels', files.trainY, '--epochs', '150', '--batch', '16', '--out', out, '--checkpoint', checkpoint];
    const child = spawn(process.execPath, [binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        // The first epoch line: training is under way in the worker.
        if (stderr.includes('epoch 1/150')) resolve();
      });
      child.on('exit', () => reject(new Error(`autoglm exited before training started: ${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toContain(`checkpoint written to ${checkpoint}`);
    expect(stderr).toContain(`--resume ${checkpoint}`);
    await expect(access(out)).rejects.toThrow();

    const resumed = spawn(process.execPath, [binary, 'train', files.model, '--data', files.trainX, '--labels', files.trainY, '--resume', checkpoint, '--out', out, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    resumed.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    expect(await new Promise((resolve) => resumed.on('exit', resolve))).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ output: out, steps: 150 * 6 });
  });
});
