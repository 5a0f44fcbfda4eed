import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { DataType, makeNode, makeTensorValueInfo, ModelProtoSchema, OnnxModel } from '@open-autoglm/onnx';
import { loadDataset, readNpy, writeNpy } from '@open-autoglm/runtime';
import { quantizeStatic } from './quantizeStatic.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir as fixtures, runAutoglmBinary as autoglm, snapshotFolder as snapshot } from '../../../tools/test-support/autoglmBinary.js';

const lenet = path.join(fixtures, 'lenet5-fmnist.onnx');
const resnet = path.join(fixtures, 'resnet8-fmnist.onnx');
const calibX = path.join(fixtures, 'fmnist-calib.x.npy');

describe('autoglm quantize', () => {
  let dir: string;
  let valX: string;
  let valY: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-quantize-cli-'));
    // The first 500 validation samples keep the command runs short.
    valX = path.join(dir, 'val.x.npy');
    valY = path.join(dir, 'val.y.npy');
    for (const [from, to] of [['fmnist-val-2k.x.npy', valX], ['fmnist-val-2k.y.npy', valY]] as const) {
      const array = await readNpy(path.join(fixtures, from));
      const rows = array.shape.slice(1).reduce((a, b) => a * b, 1);
      await writeNpy(to, { dtype: array.dtype, shape: [500, ...array.shape.slice(1)], data: array.data.subarray(0, 500 * rows) });
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should write a static INT8 model and a debug report with accuracies, scales and SQNR', async () => {
    const result = await autoglm(dir, 'quantize', resnet, '--calib', calibX, '--calib-samples', '300', '--out', 'r8.int8.onnx',
      '--val', valX, '--labels', valY, '--report', 'r8.report.json', '--json');
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    const data = JSON.parse(result.stdout) as {
      mode: string;
      accuracy: { input: number; quantized: number; drop: number };
      tensors: Array<{ tensor: string; scale: number; zeroPoint: number; sqnrDb: number | null }>;
      weights: Array<{ axis: number | null; int32Bias: boolean }>;
      worstTensors: unknown[];
    };
    expect(data.mode).toBe('static');
    expect(data.accuracy.drop).toBeLessThanOrEqual(0.003);
    expect(data.tensors.length).toBeGreaterThan(10);
    expect(data.tensors.every((t) => t.scale > 0 && typeof t.sqnrDb === 'number' && t.sqnrDb > 15)).toBe(true);
    expect(data.weights.every((w) => w.axis === 0 && w.int32Bias)).toBe(true);
    expect(data.worstTensors).toHaveLength(5);
    expect(JSON.parse(await readFile(path.join(dir, 'r8.report.json'), 'utf8'))).toEqual(data);
    const written = await OnnxModel.load(path.join(dir, 'r8.int8.onnx'));
    expect(written.graph.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(10);
    const text = await autoglm(dir, 'quantize', lenet, '--calib', calibX, '--calib-samples', '100', '--out', 'lenet.text.onnx', '--per-tensor', '--exclude', '/fc3/Gemm');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Wrote .*lenet\.text\.onnx \(static INT8/);
    expect(text.stdout).toMatch(/float node.*\n.*\n\/fc3\/Gemm\s+Gemm\s+excluded/);
  });

  it('should never return a lenet5 slower than the input in automatic mode, and say why layers stay float', async () => {
    const result = await autoglm(dir, 'quantize', lenet, '--calib', calibX, '--calib-samples', '200', '--out', 'lenet.auto.onnx',
      '--val', valX, '--labels', valY, '--max-drop', '0.005', '--json');
    expect(result.code).toBe(0);
    const data = JSON.parse(result.stdout) as {
      mode: string;
      accuracy: { drop: number };
      auto: { input: { latencyMs: number }; chosen: { latencyMs: number }; summary: string; layers: Array<{ precision: string; reason: string }> };
    };
    expect(data.mode).toBe('auto');
    expect(data.accuracy.drop).toBeLessThanOrEqual(0.005);
    expect(data.auto.chosen.latencyMs).toBeLessThanOrEqual(data.auto.input.latencyMs);
    expect(data.auto.layers).toHaveLength(5);
    for (const layer of data.auto.layers) expect(layer.reason.length).toBeGreaterThan(10);
    expect(data.auto.summary).toMatch(/INT8|input model unchanged/);
  });

  it('should quantize dynamically without calibration data', async () => {
    const result = await autoglm(dir, 'quantize', lenet, '--dynamic', '--out', 'lenet.dynamic.onnx', '--json');
    expect(result.code).toBe(0);
    const data = JSON.parse(result.stdout) as { mode: string; quantizedNodes: string[] };
    expect(data.mode).toBe('dynamic');
    expect(data.quantizedNodes).toEqual(['/fc1/Gemm', '/fc2/Gemm', '/fc3/Gemm']);
  });

  it('should refuse bad inputs with one message and write nothing', async () => {
    const bad = await mkdtemp(path.join(tmpdir(), 'autoglm-quantize-bad-'));
    try {
      const old = new OnnxModel(
        create(ModelProtoSchema, {
          irVersion: 7n,
          opsetImport: [{ domain: '', version: 12n }],
          graph: {
            name: 'old',
            node: [makeNode('Relu', ['x'], ['y'])],
            input: [makeTensorValueInfo('x', DataType.FLOAT, ['n', 1, 28, 28])],
            output: [makeTensorValueInfo('y', DataType.FLOAT, ['n', 1, 28, 28])],
          },
        }),
      );
      await old.save(path.join(bad, 'opset12.onnx'));
      const calibration = (await loadDataset({ x: calibX })).slice(0, 32);
      await (await quantizeStatic(await OnnxModel.load(lenet), calibration)).model.save(path.join(bad, 'quantized.onnx'));
      const before = await snapshot(bad);
      const cases: Array<[string[], RegExp]> = [
        [['quantize', resnet, '--calib', path.join(fixtures, 'spam-calib.x.npy'), '--out', 'a.onnx'], /int64 but input "input".*expects float32/],
        [['quantize', resnet, '--calib', path.join(fixtures, 'mnist-calib.y.npy'), '--out', 'a.onnx'], /mnist-calib\.y\.npy\) is int64/],
        [['quantize', 'quantized.onnx', '--calib', calibX, '--out', 'a.onnx', '--report', 'a.json'], /already quantized/],
        [['quantize', 'opset12.onnx', '--calib', calibX, '--out', 'a.onnx'], /opset 12.*opset 13 or newer/],
        [['quantize', resnet, '--out', 'a.onnx'], /needs --calib/],
        // Files inside this folder, so that a regression would show in the snapshot, not damage the fixtures.
        [['quantize', 'opset12.onnx', '--calib', calibX, '--out', 'a.onnx', '--report', 'opset12.onnx'], /--report .*opset12\.onnx is one of the input files/],
        [['quantize', resnet, '--calib', 'c.npy', '--out', 'c.npy'], /--out .*c\.npy is one of the input files/],
        [['quantize', resnet, '--calib', calibX, '--out', 'a.onnx', '--report', 'a.onnx'], /--report and --out are both/],
        [['quantize', resnet, '--calib', calibX, '--out', 'a.onnx', '--method', 'kl'], /--method must be one of minmax, percentile, entropy, mse/],
      ];
      for (const [argv, message] of cases) {
        const result = await autoglm(bad, ...argv);
        expect(result.code, argv.join(' ')).toBe(1);
        expect(result.stderr, argv.join(' ')).toMatch(message);
        // Progress lines ("quantize: ...") may come first; the failure itself is one line.
        const lines = result.stderr.trim().split('\n').filter((line) => !line.startsWith('quantize: '));
        expect(lines, argv.join(' ')).toHaveLength(1);
      }
      expect(await snapshot(bad)).toEqual(before);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
