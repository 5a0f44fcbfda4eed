import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLocation, OnnxModel, StringStringEntryProtoSchema } from '@open-autoglm/onnx';
import { create } from '@bufbuild/protobuf';
import { runCli } from './runCli.js';
import { runAutoglmBinary as runBinary, snapshotFolder as snapshot } from '../../../tools/test-support/autoglmBinary.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = path.join(repo, 'fixtures');

interface Manifest {
  models: Record<string, { params: number; macs_per_sample: { total: number }; splits: { eval: string }; accuracy: { onnxruntime_eval: number } }>;
}

/** Runs the CLI in this process, capturing what it prints. */
async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('autoglm', () => {
  let manifest: Manifest;
  beforeAll(async () => {
    manifest = JSON.parse(await readFile(path.join(fixtures, 'manifest.json'), 'utf8')) as Manifest;
  });

  describe('inspect', () => {
    for (const name of ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam']) {
      it(`should report ${name}'s params exactly and MACs within 1% of the manifest`, async () => {
        const { code, stdout } = await run('inspect', path.join(fixtures, `${name}.onnx`), '--json');
        expect(code).toBe(0);
        const report = JSON.parse(stdout) as { params: number; macs: number; opset: number; ops: Record<string, number>; inputs: unknown[]; outputs: unknown[] };
        const expected = manifest.models[name];
        expect(report.params).toBe(expected?.params);
        expect(Math.abs(report.macs - (expected?.macs_per_sample.total ?? 0)) / (expected?.macs_per_sample.total ?? 1)).toBeLessThan(0.01);
        expect(report.opset).toBe(17);
        expect(Object.values(report.ops).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        expect(report.inputs.length).toBe(1);
        expect(report.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['batch', name === 'tinybert-spam' ? 2 : 10] }]);
      });
    }

    it('should list every node with --layers', async () => {
      const { code, stdout } = await run('inspect', path.join(fixtures, 'lenet5-fmnist.onnx'), '--layers', '--json');
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as { layers: Array<{ opType: string; macs: number; outputShape: unknown }>; macs: number };
      expect(report.layers).toHaveLength(14);
      expect(report.layers[0]).toMatchObject({ opType: 'Conv', macs: 117_600, outputShape: [1, 6, 28, 28] });
      expect(report.layers.reduce((sum, l) => sum + l.macs, 0)).toBe(report.macs);
    });

    it('should print a readable summary without --json', async () => {
      const { code, stdout } = await run('inspect', path.join(fixtures, 'lenet5-fmnist.onnx'));
      expect(code).toBe(0);
      expect(stdout).toContain('params     61,728');
      expect(stdout).toContain('input  float32[batch, 1, 28, 28]');
    });
  });

  describe('eval', () => {
    const splitFiles: Record<string, string> = { 'fmnist-val-2k': 'fmnist-val-2k', 'mnist-test': 'mnist-test', 'spam-val': 'spam-val' };
    for (const name of ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam']) {
      it(`should match ${name}'s accuracy in the manifest within 0.1 point`, async () => {
        const model = manifest.models[name];
        const split = splitFiles[model?.splits.eval ?? ''] ?? '';
        const { code, stdout } = await run(
          'eval', path.join(fixtures, `${name}.onnx`),
          '--data', path.join(fixtures, `${split}.x.npy`), '--labels', path.join(fixtures, `${split}.y.npy`),
          '--batch', '250', '--json',
        );
        expect(code).toBe(0);
        const report = JSON.parse(stdout) as { accuracy: number; samples: number };
        expect(Math.abs(report.accuracy - (model?.accuracy.onnxruntime_eval ?? 0))).toBeLessThanOrEqual(0.001);
        expect(report.samples).toBe(name === 'tinybert-spam' ? 889 : 2000);
      });
    }

    it('should measure agreement with a reference model when there are no labels', async () => {
      const model = path.join(fixtures, 'lenet5-fmnist.onnx');
      const { code, stdout } = await run('eval', model, '--data', path.join(repo, 'examples/quickstart/fmnist-val-500.x.npy'), '--reference', model, '--json');
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ agreement: 1, maxAbsError: 0, samples: 500 });
    });
  });

  describe('bench', () => {
    it('should report latency percentiles with the batch, threads and runs used', async () => {
      const { code, stdout } = await run('bench', path.join(fixtures, 'lenet5-fmnist.onnx'), '--batch', '4', '--runs', '20', '--warmup', '2', '--json');
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as Record<string, number>;
      expect(report).toMatchObject({ batch: 4, threads: 1, runs: 20 });
      expect(report.p50Ms).toBeGreaterThan(0);
      expect(report.p50Ms).toBeLessThanOrEqual(report.p90Ms ?? 0);
      expect(report.minMs).toBeLessThanOrEqual(report.meanMs ?? 0);
    });
  });

  describe('schema and plugins', () => {
    it('should print the config JSON Schema', async () => {
      const { code, stdout } = await run('schema');
      expect(code).toBe(0);
      const schema = JSON.parse(stdout) as { $schema: string; properties: Record<string, unknown>; additionalProperties: boolean };
      expect(schema.$schema).toContain('json-schema.org');
      expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['model', 'data', 'target', 'objectives', 'search', 'passes', 'output']));
      expect(schema.additionalProperties).toBe(false);
    });

    it('should list an installed third-party plugin with what it provides', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'autoglm-plugins-'));
      try {
        const { symlink, mkdir } = await import('node:fs/promises');
        await mkdir(path.join(dir, 'node_modules'));
        await symlink(path.join(repo, 'examples/plugin-template'), path.join(dir, 'node_modules/autoglm-plugin-fold-batchnorm'));
        const { code, stdout } = await runBinary(dir, 'plugins', '--json');
        expect(code).toBe(0);
        const report = JSON.parse(stdout) as { plugins: Array<{ name: string; provides: string[] }> };
        expect(report.plugins).toContainEqual(expect.objectContaining({ name: 'autoglm-plugin-fold-batchnorm', provides: ['core.pass'] }));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('validate', () => {
    it('should accept a config whose plugins are installed: a first-party one by short name, a third-party one by path relative to the config', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'autoglm-validate-'));
      try {
        const config = path.join(dir, 'autoglm.yaml');
        const quickstart = path.join(repo, 'examples/quickstart');
        await writeFile(
          config,
          [
            `model: ${path.join(quickstart, 'lenet5-fmnist.onnx')}`,
            'data:',
            `  val: { x: ${path.join(quickstart, 'fmnist-val-500.x.npy')}, y: ${path.join(quickstart, 'fmnist-val-500.y.npy')} }`,
            'objectives: [{ metric: accuracy, maxDrop: 0.01 }]',
            'search: { use: search-bayes, with: { sampler: tpe, trials: 10, seed: 0 } }',
            `passes: [{ use: ${path.relative(dir, path.join(repo, 'examples/plugin-template/index.js'))}, with: { removeDeadNodes: false } }]`,
            '',
          ].join('\n'),
        );
        const { code, stdout, stderr } = await runBinary(dir, 'validate', config, '--json');
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(JSON.parse(stdout)).toMatchObject({
          valid: true,
          model: { params: 61_728 },
          data: { val: { samples: 500, labelled: true } },
          search: '@open-autoglm/search-bayes@0.1.0',
          passes: ['autoglm-plugin-fold-batchnorm@0.1.0'],
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('on bad input', () => {
    let dir: string;
    let before: string[];
    const lenet = path.join(fixtures, 'lenet5-fmnist.onnx');
    const valX = path.join(fixtures, 'fmnist-val-2k.x.npy');
    const valY = path.join(fixtures, 'fmnist-val-2k.y.npy');

    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'autoglm-bad-'));
      const model = await readFile(lenet);
      await writeFile(path.join(dir, 'truncated.onnx'), model.subarray(0, 1000));
      let seed = 12345;
      const random = Buffer.alloc(4096, 0).map(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % 256));
      await writeFile(path.join(dir, 'random.onnx'), random);
      // A model whose external data points outside its folder (a known attack on ONNX loaders).
      const escaping = OnnxModel.fromBytes(model);
      const weight = escaping.graph.getInitializer('conv1.weight');
      if (weight === undefined) throw new Error('lenet5 has conv1.weight');
      weight.rawData = new Uint8Array(0);
      weight.dataLocation = DataLocation.EXTERNAL;
      weight.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: '../outside.bin' })];
      await writeFile(path.join(dir, 'escaping.onnx'), escaping.toBytes());
      const x = await readFile(valX);
      await writeFile(path.join(dir, 'broken-header.npy'), Buffer.concat([x.subarray(0, 10), Buffer.from('{not a dict}\n')]));
      await copyFile(path.join(repo, 'examples/quickstart/fmnist-val-500.y.npy'), path.join(dir, 'labels-500.y.npy'));
      const base = `model: ${lenet}\ndata:\n  val: { x: ${valX}, y: ${valY} }\nobjectives: [{ metric: accuracy, maxDrop: 0.01 }]\nsearch: { use: search-bayes }\npasses: [{ use: quantizer-int8 }]\n`;
      await writeFile(path.join(dir, 'unknown-key.yaml'), `${base}target: { device: cpu, thread: 2 }\n`);
      await writeFile(path.join(dir, 'wrong-type.yaml'), `${base}target: { device: cpu, threads: two }\n`);
      before = await snapshot(dir);
    });

    afterAll(async () => {
      expect(await snapshot(dir)).toEqual(before);
      await rm(dir, { recursive: true, force: true });
    });

    const cases: Array<{ what: string; argv: () => string[]; file: string; says: RegExp }> = [
      { what: 'a truncated .onnx', argv: () => ['inspect', 'truncated.onnx'], file: 'truncated.onnx', says: /not a valid ONNX model.*re-export/ },
      { what: 'a random-bytes .onnx', argv: () => ['inspect', 'random.onnx'], file: 'random.onnx', says: /not a valid ONNX model/ },
      { what: 'external data escaping the model folder', argv: () => ['inspect', 'escaping.onnx'], file: 'escaping.onnx', says: /outside\.bin.*(outside|escapes)/i },
      {
        what: 'external data escaping the model folder, at evaluation',
        argv: () => ['eval', 'escaping.onnx', '--data', valX, '--labels', valY],
        file: 'escaping.onnx',
        says: /outside\.bin.*points outside the model's folder/,
      },
      { what: 'external data escaping the model folder, at benchmark', argv: () => ['bench', 'escaping.onnx', '--runs', '2'], file: 'escaping.onnx', says: /points outside the model's folder/ },
      { what: 'a .npy with a broken header', argv: () => ['eval', lenet, '--data', 'broken-header.npy', '--labels', valY], file: 'broken-header.npy', says: /header/ },
      {
        what: 'labels with a different row count',
        argv: () => ['eval', lenet, '--data', valX, '--labels', 'labels-500.y.npy'],
        file: 'labels-500.y.npy',
        says: /2000 samples.*500/,
      },
      { what: 'a YAML with an unknown key', argv: () => ['validate', 'unknown-key.yaml'], file: 'unknown-key.yaml', says: /line 7.*target\.thread\b.*threads/s },
      { what: 'a YAML with a wrong type', argv: () => ['validate', 'wrong-type.yaml'], file: 'wrong-type.yaml', says: /line 7.*target\.threads.*"two"/s },
      { what: 'a missing model file', argv: () => ['inspect', 'missing.onnx'], file: 'missing.onnx', says: /does not exist/ },
      { what: 'a missing data file', argv: () => ['eval', lenet, '--data', 'missing.npy', '--labels', valY], file: 'missing.npy', says: /does not exist/ },
      { what: 'a missing config file', argv: () => ['validate', 'missing.yaml'], file: 'missing.yaml', says: /Check the path/ },
    ];
    for (const c of cases) {
      it(`should exit non-zero with one message naming the file for ${c.what}, and write nothing`, async () => {
        const { code, stdout, stderr } = await runBinary(dir, ...c.argv());
        expect(code).toBe(1);
        expect(stdout).toBe('');
        expect(stderr.startsWith('autoglm: ')).toBe(true);
        expect(stderr).toContain(c.file);
        expect(stderr).toMatch(c.says);
        expect(stderr).not.toMatch(/^\s+at /m);
      });
    }

    it('should add the stack and causes with --verbose', async () => {
      const { code, stderr } = await runBinary(dir, 'inspect', 'truncated.onnx', '--verbose');
      expect(code).toBe(1);
      expect(stderr).toMatch(/^\s+at /m);
    });

    it('should exit 2 with a usage message for a bad option value', async () => {
      const { code, stderr } = await runBinary(dir, 'bench', lenet, '--runs', 'many');
      expect(code).toBe(2);
      expect(stderr).toContain('expected a positive whole number, got "many"');
    });
  });
});
