import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type CompressionReport } from '@open-autoglm/core';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const binary = path.join(repo, 'apps/cli/bin/autoglm.js');
const quickstart = path.join(repo, 'examples/quickstart');
// A small real pass (per-layer weight rounding) loaded by path, as a third-party plugin would be.
const roundWeights = path.join(repo, 'packages/runtime/src/plugin/test-support/roundWeightsPlugin.js');

async function runBinary(cwd: string, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [binary, ...argv], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** LeNet-5 on 500 images, rounding searched per layer, one objective so the best trial is deterministic. */
function config(runs: number, trials = 4): string {
  return [
    `model: ${path.join(quickstart, 'lenet5-fmnist.onnx')}`,
    `data: { val: { x: ${path.join(quickstart, 'fmnist-val-500.x.npy')}, y: ${path.join(quickstart, 'fmnist-val-500.y.npy')} } }`,
    `target: { device: cpu, threads: 1, batch: 1, runs: ${runs}, warmupRuns: 2 }`,
    'objectives: [{ metric: accuracy }]',
    `search: { use: search-bayes, with: { sampler: tpe, trials: ${trials}, seed: 3, startupTrials: 2 } }`,
    `passes: [{ use: ${roundWeights} }]`,
    'output: ./out',
    '',
  ].join('\n');
}

async function readReport(dir: string): Promise<CompressionReport> {
  return JSON.parse(await readFile(path.join(dir, 'out', 'report.json'), 'utf8')) as CompressionReport;
}

describe('autoglm compress and init', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-compress-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should write a starter config that loads, and keep an existing one without --force', async () => {
    const work = await mkdtemp(path.join(dir, 'init-'));
    const model = path.join(quickstart, 'lenet5-fmnist.onnx');
    const data = ['--data', path.join(quickstart, 'fmnist-val-500.x.npy'), '--labels', path.join(quickstart, 'fmnist-val-500.y.npy')];
    const first = await runBinary(work, 'init', model, ...data);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const loaded = await loadConfig(path.join(work, 'autoglm.yaml'));
    expect(loaded.config.model).toBe(model);
    expect(loaded.config.data.val.y).toBe(path.join(quickstart, 'fmnist-val-500.y.npy'));
    expect(loaded.config.passes.map((p) => p.use)).toEqual(['pruner-structured', 'quantizer-int8']);
    expect(loaded.config.objectives[0]).toMatchObject({ metric: 'accuracy', maxDrop: 0.01 });
    const again = await runBinary(work, 'init', model, ...data);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists; it was left as it is\. Pass --force/);
  });

  it('should write paths that YAML would misread (": ", " #", ",", "}") so that the config validates with the same files', async () => {
    const work = await mkdtemp(path.join(dir, 'init-odd-'));
    const odd = path.join(work, '*odd: #1, {x}');
    await mkdir(odd);
    const model = path.join(odd, '*lenet: #5.onnx');
    const x = path.join(odd, 'val #x, 1.npy');
    const y = path.join(odd, 'val: y}.npy');
    await copyFile(path.join(quickstart, 'lenet5-fmnist.onnx'), model);
    await copyFile(path.join(quickstart, 'fmnist-val-500.x.npy'), x);
    await copyFile(path.join(quickstart, 'fmnist-val-500.y.npy'), y);
    const out = path.join(odd, 'auto glm: #1.yaml');
    const init = await runBinary(work, 'init', model, '--data', x, '--labels', y, '--out', out);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    // The next-step hint is quoted for a POSIX shell.
    expect(init.stdout).toContain(`next: autoglm validate '${out}' && autoglm compress '${out}'`);
    const loaded = await loadConfig(out);
    expect([loaded.config.model, loaded.config.data.val.x, loaded.config.data.val.y, loaded.config.data.calib?.x]).toEqual([model, x, y, x]);
    const validated = await runBinary(work, 'validate', out, '--json');
    expect(validated.stderr).toBe('');
    expect(validated.code).toBe(0);
    expect(JSON.parse(validated.stdout)).toMatchObject({ valid: true, model: { path: model }, data: { val: { samples: 500, labelled: true } } });
  });

  it('should run the search, print the report as JSON and write the outputs', async () => {
    const work = await mkdtemp(path.join(dir, 'run-'));
    await writeFile(path.join(work, 'autoglm.yaml'), config(10));
    const result = await runBinary(work, 'compress', 'autoglm.yaml', '--trials', '3', '--json');
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as CompressionReport & { bestModel: string };
    expect(printed.trials).toHaveLength(3);
    expect(printed.bestModel).toBe(path.join(work, 'out', 'best.onnx'));
    for (const file of ['best.onnx', 'report.json', 'report.html', 'study.db']) expect(existsSync(path.join(work, 'out', file))).toBe(true);
    expect(result.stderr).toBe('');
    // Without --json, not on a terminal: one plain progress line per trial on stderr.
    const plain = await runBinary(work, 'compress', 'autoglm.yaml', '--trials', '2');
    expect(plain.stderr.match(/^trial \d\/2 /gm)).toHaveLength(2);
    expect(plain.stdout).toMatch(/^best {3}acc \d+\.\d\d %/m);
  });

  it('should resume after kill -9 during a trial with every finished trial kept once and the uninterrupted run\'s result', async () => {
    // Long latency measurements make each trial last long enough to be killed inside one.
    const uninterrupted = await mkdtemp(path.join(dir, 'whole-'));
    await writeFile(path.join(uninterrupted, 'autoglm.yaml'), config(2000, 3));
    expect((await runBinary(uninterrupted, 'compress', 'autoglm.yaml')).code).toBe(0);
    const expected = await readReport(uninterrupted);

    const killed = await mkdtemp(path.join(dir, 'killed-'));
    await writeFile(path.join(killed, 'autoglm.yaml'), config(2000, 3));
    const child = spawn(process.execPath, [binary, 'compress', 'autoglm.yaml'], { cwd: killed, stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve) => {
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        // Trial 2 has started once trial 1 is reported: kill the process inside it.
        if (/^trial 2\/3 /m.test(stderr)) setTimeout(() => child.kill('SIGKILL'), 30);
      });
      child.on('exit', () => resolve());
    });
    expect(existsSync(path.join(killed, 'out', 'best.onnx'))).toBe(true);
    const resumed = await runBinary(killed, 'compress', 'autoglm.yaml', '--resume');
    expect(resumed.stderr).toMatch(/resumed after 2 finished trial\(s\)/);
    expect(resumed.code).toBe(0);
    const report = await readReport(killed);
    expect(report.trials.map((t) => [t.number, t.state])).toEqual([0, 1, 2].map((n) => [n, 'complete']));
    expect(report.trials.map((t) => t.params)).toEqual(expected.trials.map((t) => t.params));
    expect(report.best?.number).toBe(expected.best?.number);
    expect(report.best?.metrics?.['accuracy']).toBe(expected.best?.metrics?.['accuracy']);
  });
});
