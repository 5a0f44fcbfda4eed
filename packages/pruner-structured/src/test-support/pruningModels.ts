/**
 * Test support for the pruner (not exported from the package): the fixture models with a few
 * rows of their evaluation data, and small hand-built graphs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { type NpyArray, createSession, readArray } from '@open-autoglm/runtime';
import {
  arrayToTensor,
  DataType,
  GraphProtoSchema,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  OnnxModel,
  type NodeProto,
  type TensorProto,
  tensorDims,
  tensorToArray,
  type ValueInfoProto,
} from '@open-autoglm/onnx';
import type { DependencyAnalysis } from '../analyzeDependencies.js';
import { InferenceSession, Tensor } from 'onnxruntime-node';

export const FIXTURES = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam'] as const;
export type Fixture = (typeof FIXTURES)[number];

export const EVAL_SPLIT: Readonly<Record<Fixture, string>> = {
  'lenet5-fmnist': 'fmnist-val-2k',
  'resnet8-fmnist': 'fmnist-val-2k',
  'vgg11bn-mnist': 'mnist-test',
  'tinybert-spam': 'spam-val',
};

export const CALIB_SPLIT: Readonly<Record<Fixture, string>> = {
  'lenet5-fmnist': 'fmnist-calib',
  'resnet8-fmnist': 'fmnist-calib',
  'vgg11bn-mnist': 'mnist-calib',
  'tinybert-spam': 'spam-calib',
};

export function fixturePath(file: string): string {
  return new URL(`../../../../fixtures/${file}`, import.meta.url).pathname;
}

export function loadFixture(name: Fixture): Promise<OnnxModel> {
  return OnnxModel.load(fixturePath(`${name}.onnx`));
}

/** The first `count` rows of an array as an onnxruntime tensor. */
export function rowsOf(array: NpyArray, count: number): Tensor {
  const row = array.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = array.data.subarray(0, count * row);
  return new Tensor(array.dtype as 'float32', data as Float32Array, [count, ...array.shape.slice(1)]);
}

export async function evalRows(name: Fixture, count: number): Promise<Tensor> {
  return rowsOf(await readArray(fixturePath(`${EVAL_SPLIT[name]}.x.npy`)), count);
}

/** Runs a model (1 thread) on one input tensor and returns its first output's values. */
export async function runOnce(model: OnnxModel | Uint8Array, input: Tensor): Promise<Float32Array> {
  const session = await createSession(model instanceof OnnxModel ? model.toBytes() : model, { device: 'cpu', threads: 1 });
  const outputs = await session.run({ [session.inputNames[0] as string]: input });
  return outputs[session.outputNames[0] as string]?.data as Float32Array;
}

/** Deterministic values in [-1, 1). */
export function randomValues(length: number, seed = 1): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** A float initializer of deterministic values in [-1, 1). */
export function weight(name: string, dims: number[], seed: number): TensorProto {
  return arrayToTensor(name, randomValues(dims.reduce((a, b) => a * b, 1), seed), dims);
}

/** A model (opset 17) from hand-written nodes, initializers, inputs and outputs. */
export function handBuiltModel(nodes: NodeProto[], initializer: TensorProto[], input: ValueInfoProto[], output: ValueInfoProto[]): OnnxModel {
  const graph = create(GraphProtoSchema, { name: 'hand-built', input, output, initializer, node: nodes });
  return new OnnxModel(makeModel(graph, { producerName: 'pruner-tests' }));
}


export interface SmallModelOptions {
  /** Puts a custom-domain op on the first conv's branch. */
  readonly customOp?: boolean;
}

/**
 * x[N,3,8,8] -> conv_a(8) -> Relu -> [custom op] -> conv_b(8) -> Relu -> GlobalAveragePool ->
 * Flatten -> fc(4), and a second branch conv_c(6) -> Relu -> Mul by a [6,1,1] constant ->
 * conv_d(8) added to conv_b's output before the Relu (a residual join).
 */
export function smallConvModel(options: SmallModelOptions = {}): OnnxModel {
  const nodes = [
    makeNode('Conv', ['x', 'wa', 'ba'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
    makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
    ...(options.customOp === true ? [makeNode('Scramble', ['a_relu'], ['a_custom'], {}, 'custom', 'com.example')] : []),
    makeNode('Conv', [options.customOp === true ? 'a_custom' : 'a_relu', 'wb'], ['b'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_b'),
    makeNode('Conv', ['x', 'wc', 'bc'], ['c'], { kernel_shape: [1, 1] }, 'conv_c'),
    makeNode('Relu', ['c'], ['c_relu'], {}, 'relu_c'),
    makeNode('Mul', ['c_relu', 'scale_c'], ['c_scaled'], {}, 'scale_c'),
    makeNode('Conv', ['c_scaled', 'wd'], ['d'], { kernel_shape: [1, 1] }, 'conv_d'),
    makeNode('Add', ['b', 'd'], ['sum'], {}, 'join'),
    makeNode('Relu', ['sum'], ['sum_relu'], {}, 'relu_sum'),
    makeNode('GlobalAveragePool', ['sum_relu'], ['pooled'], {}, 'pool'),
    makeNode('Flatten', ['pooled'], ['flat'], { axis: 1 }, 'flatten'),
    makeNode('Gemm', ['flat', 'wf', 'bf'], ['y'], { transB: 1 }, 'fc'),
  ];
  const initializers = [
    weight('wa', [8, 3, 3, 3], 1),
    weight('ba', [8], 2),
    weight('wb', [8, 8, 3, 3], 3),
    weight('wc', [6, 3, 1, 1], 4),
    weight('bc', [6], 5),
    weight('scale_c', [6, 1, 1], 6),
    weight('wd', [8, 6, 1, 1], 7),
    weight('wf', [4, 8], 8),
    weight('bf', [4], 9),
  ];
  const graph = create(GraphProtoSchema, {
    name: 'small',
    input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 3, 8, 8])],
    output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 4])],
    initializer: initializers,
    node: nodes,
    // Exporters declare the shapes of custom ops, which no shape inference knows.
    valueInfo: options.customOp === true ? [makeTensorValueInfo('a_custom', DataType.FLOAT, ['batch', 8, 8, 8])] : [],
  });
  return new OnnxModel(makeModel(graph, { producerName: 'pruner-tests', ...(options.customOp === true ? { extraOpsets: { 'com.example': 1 } } : {}) }));
}

/**
 * x[N,3,8,8] -> conv_a(8) -> Relu and conv_b(6) -> Relu, concatenated along the channels (14),
 * a BatchNorm over the 14 channels, Relu, conv_c(4) -> GlobalAveragePool -> Flatten -> fc(3).
 */
export function concatModel(): OnnxModel {
  const nodes = [
    makeNode('Conv', ['x', 'wa', 'ba'], ['a'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_a'),
    makeNode('Relu', ['a'], ['a_relu'], {}, 'relu_a'),
    makeNode('Conv', ['x', 'wb'], ['b'], { kernel_shape: [1, 1] }, 'conv_b'),
    makeNode('Relu', ['b'], ['b_relu'], {}, 'relu_b'),
    makeNode('Concat', ['a_relu', 'b_relu'], ['ab'], { axis: 1 }, 'concat'),
    makeNode('BatchNormalization', ['ab', 'gamma', 'beta', 'mean', 'var'], ['ab_bn'], {}, 'bn'),
    makeNode('Relu', ['ab_bn'], ['ab_relu'], {}, 'relu_ab'),
    makeNode('Conv', ['ab_relu', 'wc'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv_c'),
    makeNode('GlobalAveragePool', ['c'], ['pooled'], {}, 'pool'),
    makeNode('Flatten', ['pooled'], ['flat'], { axis: 1 }, 'flatten'),
    makeNode('Gemm', ['flat', 'wf', 'bf'], ['y'], { transB: 1 }, 'fc'),
  ];
  const positive = (name: string, length: number, seed: number): TensorProto =>
    arrayToTensor(name, randomValues(length, seed).map((v) => 0.5 + Math.abs(v)), [length]);
  const initializers = [
    weight('wa', [8, 3, 3, 3], 21),
    weight('ba', [8], 22),
    weight('wb', [6, 3, 1, 1], 23),
    positive('gamma', 14, 24),
    weight('beta', [14], 25),
    weight('mean', [14], 26),
    positive('var', 14, 27),
    weight('wc', [4, 14, 3, 3], 28),
    weight('wf', [3, 4], 29),
    weight('bf', [3], 30),
  ];
  const graph = create(GraphProtoSchema, {
    name: 'concat',
    input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', 3, 8, 8])],
    output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', 3])],
    initializer: initializers,
    node: nodes,
  });
  return new OnnxModel(makeModel(graph, { producerName: 'pruner-tests' }));
}

/**
 * The reference a pruned model must match: the ORIGINAL model with the weights that read the
 * removed units set to zero. Removed channels then reach nothing, so the original computes
 * exactly what the smaller model computes (up to float summation order).
 */
export function zeroRemovedInputs(model: OnnxModel, analysis: DependencyAnalysis, plan: ReadonlyMap<string, readonly number[]>): OnnxModel {
  const reference = model.clone();
  const graph = reference.graph;
  // Concatenated channels keep their input groups' kept channels at their offsets.
  const concatenated = analysis.concatenations.map((c) => ({
    name: c.name,
    unitSize: 1,
    members: c.members,
    kept: c.segments.flatMap((s) => (plan.get(s.group ?? '') ?? [...Array(s.channels).keys()]).map((k) => s.offset + k)),
  }));
  const groups = [...analysis.groups.map((g) => ({ name: g.name, unitSize: g.unitSize, members: g.members, kept: plan.get(g.name) })), ...concatenated];
  for (const group of groups) {
    const kept = group.kept;
    if (kept === undefined) continue;
    const keptSet = new Set(kept);
    for (const member of group.members) {
      if (member.kind !== 'tensor' || member.role !== 'in') continue;
      const tensor = graph.constantValue(member.tensor);
      if (tensor === undefined) throw new Error(`no tensor ${member.tensor}`);
      const dims = tensorDims(tensor);
      const data = tensorToArray(tensor) as Float32Array;
      const perUnit = Math.round(member.perBase * group.unitSize);
      let inner = 1;
      for (let d = member.axis + 1; d < dims.length; d++) inner *= dims[d] as number;
      for (let i = 0; i < data.length; i++) {
        const unit = Math.floor((Math.floor(i / inner) % (dims[member.axis] as number)) / perUnit);
        if (!keptSet.has(unit)) data[i] = 0;
      }
      graph.setInitializer(arrayToTensor(member.tensor, data, dims));
    }
  }
  return reference;
}

/** Largest absolute difference, relative to the largest magnitude of `a`. */
export function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(a[i] as number));
  }
  return diff / scale;
}

/**
 * How many nodes of each op type (`domain:opType` outside the default domain) onnxruntime's CPU
 * session leaves in `model` after optimizing it at `level` with 1 thread: the graph it really runs,
 * saved through `optimizedModelFilePath` into a temporary folder that is removed afterwards.
 */
export async function optimizedOpCounts(model: OnnxModel, level: 'basic' | 'extended' | 'all'): Promise<Record<string, number>> {
  const folder = await mkdtemp(join(tmpdir(), 'pruner-optimized-'));
  try {
    const optimizedModelFilePath = join(folder, 'optimized.onnx');
    const session = await InferenceSession.create(model.toBytes(), { intraOpNumThreads: 1, graphOptimizationLevel: level, optimizedModelFilePath, logSeverityLevel: 3 });
    await session.release();
    const counts: Record<string, number> = {};
    for (const node of (await OnnxModel.load(optimizedModelFilePath)).graph.nodes) {
      const key = node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}:${node.opType}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
