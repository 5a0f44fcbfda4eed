import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@open-autoglm/core';
import { DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel } from '@open-autoglm/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMinMaxOutputs, exposeTensors } from './activationOutputs.js';
import { collectMinMax, type MinMax } from './collectMinMax.js';
import { Dataset, loadDataset } from './dataset.js';
import { createSession } from './session.js';
import { streamActivations } from './streamActivations.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const RESNET = fixture('resnet8-fmnist.onnx');
const LENET = fixture('lenet5-fmnist.onnx');
const CPU = { device: 'cpu', threads: 1 } as const;

let resnet: OnnxModel;
let convOutputs: string[];
let calibration: Dataset;
let dir: string;
beforeAll(async () => {
  resnet = await OnnxModel.load(RESNET);
  convOutputs = resnet.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.output[0] as string);
  calibration = (await loadDataset({ x: fixture('fmnist-val-2k.x.npy') })).slice(0, 300);
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-minmax-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Reference: the full tensors exposed as outputs, reduced here batch by batch. */
async function minMaxInJs(model: string, names: string[], dataset: Dataset, batch: number): Promise<Map<string, MinMax>> {
  const stats = new Map(names.map((n) => [n, { min: Infinity, max: -Infinity }]));
  let batches = 0;
  for await (const part of streamActivations(model, names, dataset, { batch })) {
    batches++;
    for (const name of names) {
      const tensor = part.tensors[name];
      expect(tensor?.dims[0]).toBe(part.size);
      const stat = stats.get(name) as MinMax;
      for (const v of tensor?.data as Float32Array) {
        if (v < stat.min) stat.min = v;
        if (v > stat.max) stat.max = v;
      }
    }
  }
  expect(batches).toBe(Math.ceil(dataset.size / batch));
  return stats;
}

function expectSameStats(actual: Map<string, MinMax>, expected: Map<string, MinMax>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, want] of expected) {
    const got = actual.get(name) as MinMax;
    expect(got.min, `${name} min`).toBeCloseTo(want.min, 5);
    expect(got.max, `${name} max`).toBeCloseTo(want.max, 5);
  }
}

describe('collectMinMax', () => {
  it('should match min/max reduced in JS from the full tensors, on every Conv output of resnet8', async () => {
    expect(convOutputs).toHaveLength(9); // manifest: op_counts.Conv
    const inGraph = await collectMinMax(RESNET, convOutputs, calibration, { batch: 100, target: CPU });
    const reference = await minMaxInJs(RESNET, convOutputs, calibration, 100);
    expectSameStats(inGraph, reference);
    for (const { min, max } of inGraph.values()) expect(min).toBeLessThan(max);
  });

  it('should not depend on the batch size (running min/max across batches)', async () => {
    const names = convOutputs.slice(0, 3);
    const oneBatch = await collectMinMax(resnet, names, calibration, { batch: 300 });
    const manyBatches = await collectMinMax(resnet, names, calibration, { batch: 7 });
    expectSameStats(manyBatches, oneBatch);
  });

  it('should read a model with external data from its path', async () => {
    const file = path.join(dir, 'lenet-external.onnx');
    const lenet = await OnnxModel.load(LENET);
    await lenet.save(file, { externalData: true });
    const names = lenet.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.output[0] as string);
    const fromExternal = await collectMinMax(file, names, calibration.slice(0, 50));
    const fromOriginal = await collectMinMax(LENET, names, calibration.slice(0, 50));
    expectSameStats(fromExternal, fromOriginal);
  });

  it('should report NaN for a tensor where the model computes NaN past its first element, and show Inf in min/max', async () => {
    // sqrt(x): NaN for x < 0, which onnxruntime's ReduceMin/ReduceMax skip; log(x): -Inf at 0.
    const model = new OnnxModel(
      makeModel({
        name: 'sqrt-log',
        node: [makeNode('Sqrt', ['x'], ['root']), makeNode('Log', ['x'], ['logarithm'])],
        input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 4])],
        output: [makeTensorValueInfo('root', DataType.FLOAT, ['batch', 4]), makeTensorValueInfo('logarithm', DataType.FLOAT, ['batch', 4])],
      }),
    );
    const dataset = (values: number[]): Dataset =>
      new Dataset(new Map([['x', { dtype: 'float32' as const, shape: [values.length / 4, 4], data: Float32Array.from(values), file: undefined }]]), undefined);
    const clean = await collectMinMax(model, ['root'], dataset([1, 4, 9, 16, 0.25, 1, 1, 1]), { batch: 1 });
    expect(clean.get('root')).toEqual({ min: 0.5, max: 4 });
    const withNaN = await collectMinMax(model, ['root', 'logarithm'], dataset([1, 4, 9, 16, 4, -1, 1, 1, 0, 1, 1, 1]), { batch: 1 });
    expect(withNaN.get('root')).toEqual({ min: Number.NaN, max: Number.NaN });
    // log(-1) is NaN too; log(0) = -Inf is visible as the minimum but the NaN of sample 1 wins.
    expect(withNaN.get('logarithm')).toEqual({ min: Number.NaN, max: Number.NaN });
    const withInf = await collectMinMax(model, ['logarithm'], dataset([1, 1, 1, 0]), { batch: 1 });
    expect(withInf.get('logarithm')).toEqual({ min: Number.NEGATIVE_INFINITY, max: 0 });
  });

  it('should refuse unknown tensor names with examples of real ones, and an empty list', async () => {
    const error = await collectMinMax(RESNET, ['/conv1/Conv_output_0', 'conv9'], calibration).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/resnet8-fmnist\.onnx has no tensor "conv9" in its main graph.*e\.g\. "\/conv1\/Conv_output_0"/);
    await expect(collectMinMax(RESNET, [], calibration)).rejects.toThrow(/No tensor names given/);
  });
});

describe('addMinMaxOutputs', () => {
  it('should add scalar min and max outputs and leave the given model untouched', async () => {
    const before = resnet.graph.outputs.length;
    const { model, outputs } = addMinMaxOutputs(resnet, convOutputs.slice(0, 2));
    expect(resnet.graph.outputs).toHaveLength(before);
    expect(model.graph.outputs).toHaveLength(before + 6);
    const session = await createSession(model.toBytes(), CPU);
    try {
      const x = calibration.slice(0, 4).batches(4).next().value?.features['x'];
      const names = [...outputs.values()].flatMap((o) => [o.min, o.max, o.nonFiniteCheck]);
      const result = await session.run({ input: x as NonNullable<typeof x> }, names);
      for (const name of names) {
        expect(result[name]?.dims, name).toEqual([]); // only a scalar crosses into JS
        expect(result[name]?.size).toBe(1);
      }
    } finally {
      await session.release();
    }
  });

  it('should give unique output names even when the natural ones are taken', () => {
    const first = addMinMaxOutputs(resnet, ['/conv1/Conv_output_0']);
    const second = addMinMaxOutputs(first.model, ['/conv1/Conv_output_0']);
    const a = first.outputs.get('/conv1/Conv_output_0');
    const b = second.outputs.get('/conv1/Conv_output_0');
    expect(b?.min).not.toBe(a?.min);
    expect(b?.max).not.toBe(a?.max);
  });
});

describe('exposeTensors', () => {
  it('should add intermediate tensors as outputs once, keeping existing outputs', () => {
    const exposed = exposeTensors(resnet, ['logits', convOutputs[0] as string, convOutputs[0] as string]);
    expect(exposed.graph.outputs.map((o) => o.name)).toEqual(['logits', convOutputs[0]]);
  });
});

describe('streamActivations', () => {
  it('should stream full activations with the batch axis first and release on break', async () => {
    let seen = 0;
    for await (const part of streamActivations(resnet, [convOutputs[0] as string], calibration, { batch: 64 })) {
      expect(part.tensors[convOutputs[0] as string]?.dims).toEqual([64, 16, 28, 28]);
      seen++;
      break;
    }
    expect(seen).toBe(1);
  });
});
