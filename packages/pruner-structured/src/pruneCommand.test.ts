import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoGlmError, silentLogger } from '@open-autoglm/core';
import { foldBatchNormalization, OnnxModel } from '@open-autoglm/onnx';
import { pruneCommand } from './pruneCommand.js';
import { fixturePath } from './test-support/pruningModels.js';
import { runAutoglmBinary as autoglm, snapshotFolder as snapshot } from '../../../tools/test-support/autoglmBinary.js';


interface PruneJson {
  predicted: { params: number; macs: number };
  actual: { params: number; macs: number };
  original: { params: number; macs: number };
  recalibratedBatchNorms: string[];
  groups: Array<{ group: string; before: number; after: number; frozen: boolean; reasons: string[] }>;
  output: string;
}

describe('autoglm prune', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-prune-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should prune resnet8 by half with BatchNorm re-estimation, print the table and match autoglm inspect', async () => {
    const { code, stdout, stderr } = await autoglm(
      dir,
      'prune', fixturePath('resnet8-fmnist.onnx'), '--ratio', '0.5', '--calib', fixturePath('fmnist-calib.x.npy'), '--calib-samples', '128', '--out', 'r8.onnx', '--report', 'r8.json',
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/\/layer2\/conv2\/Conv\s+channels\s+32 -> \d+/);
    expect(stdout).toMatch(/frozen: "\/fc\/Gemm" \(Gemm\): its output "logits" is a graph output/);
    expect(stdout).toMatch(/BatchNorm statistics re-estimated in 9 layer\(s\)/);
    const report = JSON.parse(await readFile(path.join(dir, 'r8.json'), 'utf8')) as PruneJson;
    expect(report.actual).toEqual(report.predicted);
    expect(report.actual.macs / report.original.macs).toBeLessThanOrEqual(0.35);
    const inspected = await autoglm(dir, 'inspect', 'r8.onnx', '--json');
    const counts = JSON.parse(inspected.stdout) as { params: number; macs: number };
    expect({ params: counts.params, macs: counts.macs }).toEqual(report.predicted);
  });

  it('should take per-layer ratios as JSON, round to a multiple and print JSON with --json', async () => {
    const perLayer = JSON.stringify({ '/features/features.8/Conv': 0.5, '/classifier/classifier.0/Gemm': 0.3 });
    const { code, stdout } = await autoglm(dir, 'prune', fixturePath('vgg11bn-mnist.onnx'), '--per-layer', perLayer, '--round-to', '8', '--criterion', 'fpgm', '--out', 'vgg.onnx', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as PruneJson;
    const after = Object.fromEntries(report.groups.map((g) => [g.group, g.after]));
    expect(after['/features/features.8/Conv']).toBe(32);
    expect(after['/classifier/classifier.0/Gemm']).toBe(184); // 256 - floor(0.3 * 256) = 180 -> nearest multiple of 8
    expect(after['/features/features.4/Conv']).toBe(32);
    expect(report.output).toBe(path.join(dir, 'vgg.onnx'));
  });

  it('should prune tinybert heads and FFN neurons with the Taylor criterion on labelled calibration data', async () => {
    const { code, stdout, stderr } = await autoglm(
      dir,
      'prune', fixturePath('tinybert-spam.onnx'), '--ratio', '0.5', '--criterion', 'taylor', '--calib', fixturePath('spam-calib.x.npy'), '--labels', fixturePath('spam-calib.y.npy'), '--calib-samples', '64', '--out', 'bert.onnx', '--json',
    );
    expect(stderr).toMatch(/computing gradients on 64 calibration samples/);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as PruneJson;
    expect(report.actual).toEqual(report.predicted);
    expect(report.actual.macs).toBeLessThan(report.original.macs);
  });

  it('should correct the biases of a BatchNorm-folded model with --bias-correction', async () => {
    const folded = await OnnxModel.load(fixturePath('lenet5-fmnist.onnx'));
    foldBatchNormalization(folded.proto);
    await folded.save(path.join(dir, 'folded.onnx'));
    const { code, stdout } = await autoglm(dir, 'prune', 'folded.onnx', '--ratio', '0.3', '--bias-correction', '--calib', fixturePath('fmnist-calib.x.npy'), '--calib-samples', '128', '--out', 'folded-pruned.onnx');
    expect(code).toBe(0);
    expect(stdout).toMatch(/biases corrected in [1-9]\d* layer\(s\)/);
    expect(stdout).not.toMatch(/BatchNorm statistics/);
  });

  it('should exit 1 with one message and write nothing on a bad ratio or an input it would overwrite', async () => {
    const before = await snapshot(dir);
    const bad = await autoglm(dir, 'prune', fixturePath('lenet5-fmnist.onnx'), '--out', 'never.onnx', '--ratio', '1');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/ratio must be a number in \[0, 1\)/)]);
    const overwrite = await autoglm(dir, 'prune', fixturePath('lenet5-fmnist.onnx'), '--ratio', '0.3', '--out', fixturePath('lenet5-fmnist.onnx'));
    expect(overwrite.code).toBe(1);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('should refuse every other bad input with a typed error naming the fix, before writing anything', async () => {
    const before = await snapshot(dir);
    const cases: Array<[Record<string, string | boolean | string[]>, RegExp]> = [
      [{ ratio: '-0.2' }, /ratio must be a number in \[0, 1\)/],
      [{ perLayer: '{"conv9": 0.5}' }, /name group\(s\) the model does not have: "conv9"/],
      [{ perLayer: '{"conv9": ' }, /--per-layer is not valid JSON/],
      [{ perLayer: 'missing.json' }, /Cannot read the per-layer ratios file/],
      [{ criterion: 'magic' }, /--criterion must be one of l1, l2, fpgm, bn, taylor, random/],
      [{ roundTo: '0' }, /--round-to must be a whole number >= 1/],
      [{ biasCorrection: true }, /--bias-correction measures mean activations: give --calib/],
      [{ reconstruct: true }, /--reconstruct refits layers on calibration data: give --calib/],
      [{ criterion: 'taylor' }, /taylor needs gradients of the loss: give --calib <x.npy> and --labels <y.npy>/],
      [{ ratio: '0.5', protect: ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm', '/fc2/Gemm'] }, /has no prunable channel groups/],
      [{ report: fixturePath('lenet5-fmnist.onnx') }, /--report .* is one of the input files/],
      [{ calib: fixturePath('fmnist-calib.x.npy'), out: fixturePath('fmnist-calib.x.npy') }, /--out .* is one of the input files/],
      [{ report: 'never.onnx' }, /--report and --out are both/],
    ];
    for (const [options, message] of cases) {
      const run = pruneCommand.run({ args: [fixturePath('lenet5-fmnist.onnx')], options: { out: 'never.onnx', ...options }, cwd: dir, logger: silentLogger });
      await expect(run, JSON.stringify(options)).rejects.toThrow(message);
      await expect(run).rejects.toBeInstanceOf(AutoGlmError);
    }
    expect(await snapshot(dir)).toEqual(before);
  });

  it('should refit the layers reading removed channels with --reconstruct instead of re-estimating BatchNorm', async () => {
    const result = await pruneCommand.run({
      args: [fixturePath('lenet5-fmnist.onnx')],
      options: { out: 'lenet-reconstructed.onnx', ratio: '0.5', calib: fixturePath('fmnist-calib.x.npy'), calibSamples: '600', reconstruct: true },
      cwd: dir,
      logger: silentLogger,
    });
    const data = result.data as {
      reconstructed: Array<{ node: string; errorBefore: number; errorAfter: number }>;
      reconstructionSkipped: Array<{ node: string; reason: string }>;
      recalibratedBatchNorms: string[];
    };
    expect(data.recalibratedBatchNorms).toEqual([]);
    expect(data.reconstructed.map((l) => l.node)).toEqual(['/fc2/Gemm', '/fc3/Gemm']);
    // conv2 keeps 8 of 16 channels of 5x5: fc1 reads 200 features and a bias, 600 rows are too few.
    expect(data.reconstructionSkipped).toEqual([{ node: '/fc1/Gemm', opType: 'Gemm', reason: expect.stringMatching(/only 600 calibration rows for 201 unknowns/) as unknown as string }]);
    for (const layer of data.reconstructed) expect(layer.errorAfter).toBeLessThan(layer.errorBefore);
    expect(result.summary).toMatch(/refitted \S+: relative output error [\d.]+ -> [\d.]+ \(\d+ rows\)/);
  });
});
