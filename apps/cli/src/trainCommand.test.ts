import { spawn } from 'node:child_process';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrayToTensor, DataType, makeNode, makeTensorValueInfo, ModelProtoSchema, OnnxModel } from '@open-autoglm/onnx';
import { SeededRandom, writeNpy } from '@open-autoglm/runtime';
import { runCli } from './runCli.js';

const binary = fileURLToPath(new URL('../bin/autoglm.js', import.meta.url));

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** A Gemm-Relu-Gemm classifier (6 -> 12 -> 3) and three separable classes, written to `dir`. */
async function writeProblem(dir: string): Promise<Record<'model' | 'x' | 'y' | 'valX' | 'valY', string>> {
  const random = new SeededRandom(5);
  const uniform = (n: number, bound: number): Float32Array => Float32Array.from({ length: n }, () => (2 * random.nextFloat() - 1) * bound);
  const model = new OnnxModel(
    create(ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: [{ domain: '', version: 17n }],
      graph: {
        name: 'mlp',
        node: [
          makeNode('Gemm', ['input', 'w1', 'b1'], ['h'], { transB: 1 }),
          makeNode('Relu', ['h'], ['a']),
          makeNode('Gemm', ['a', 'w2', 'b2'], ['logits'], { transB: 1 }),
        ],
        input: [makeTensorValueInfo('input', DataType.FLOAT, ['batch', 6])],
        output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', 3])],
        initializer: [
          arrayToTensor('w1', uniform(72, 0.4), [12, 6]),
          arrayToTensor('b1', uniform(12, 0.4), [12]),
          arrayToTensor('w2', uniform(36, 0.29), [3, 12]),
          arrayToTensor('b2', uniform(3, 0.29), [3]),
        ],
      },
    }),
  );
  const files = {
    model: path.join(dir, 'mlp.onnx'),
    x: path.join(dir, 'x.npy'),
    y: path.join(dir, 'y.npy'),
    valX: path.join(dir, 'val.x.npy'),
    valY: path.join(dir, 'val.y.npy'),
  };
  await model.save(files.model);
  for (const [n, x, y] of [[96, files.x, files.y], [48, files.valX, files.valY]] as const) {
    const data = new Float32Array(n * 6);
    const labels = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = BigInt(i % 3);
      for (let j = 0; j < 6; j++) data[i * 6 + j] = (j % 3 === i % 3 ? 2 : 0) + 0.5 * random.nextNormal();
    }
    await writeNpy(x, { dtype: 'float32', shape: [n, 6], data });
    await writeNpy(y, { dtype: 'int64', shape: [n], data: labels });
  }
  return files;
}

describe('autoglm train', () => {
  let dir: string;
  let files: Awaited<ReturnType<typeof writeProblem>>;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-train-cli-'));
    files = await writeProblem(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should train, evaluate every epoch and print one JSON document', async () => {
    const out = path.join(dir, 'trained.onnx');
    const { code, stdout, stderr } = await run(
      'train', files.model, '--data', files.x, '--labels', files.y, '--val-data', files.valX, '--val-labels', files.valY,
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
    const unpaired = await run('train', files.model, '--data', files.x, '--labels', files.y, '--val-data', files.valX, '--out', out);
    expect(unpaired.code).toBe(1);
    expect(unpaired.stderr).toContain('Give --val-data and --val-labels together');
    const missing = path.join(dir, 'missing.npy');
    const noData = await run('train', files.model, '--data', missing, '--labels', files.y, '--out', out);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toContain(`Dataset file ${missing} does not exist`);
    expect(noData.stderr.trim().split('\n')).toHaveLength(1);
    const badLr = await run('train', files.model, '--data', files.x, '--labels', files.y, '--lr', '-1', '--out', out);
    expect(badLr.code).toBe(2);
    expect(await readdir(dir)).toEqual(before);
  });

  it('should stop on Ctrl-C with a checkpoint that the built binary resumes from', async () => {
    const out = path.join(dir, 'interrupted.onnx');
    const checkpoint = path.join(dir, 'interrupted.ckpt');
    const args = ['train', files.model, '--data', files.x, '--labels', files.y, '--epochs', '150', '--batch', '16', '--out', out, '--checkpoint', checkpoint];
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

    const resumed = spawn(process.execPath, [binary, 'train', files.model, '--data', files.x, '--labels', files.y, '--resume', checkpoint, '--out', out, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    resumed.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    expect(await new Promise((resolve) => resumed.on('exit', resolve))).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ output: out, steps: 150 * 6 });
  });
});
