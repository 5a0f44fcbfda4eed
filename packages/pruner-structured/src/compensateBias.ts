import {
  arrayToTensor,
  DataType,
  getFloatAttribute,
  getIntAttribute,
  inferShapes,
  makeNode,
  makeTensorValueInfo,
  type OnnxModel,
  type OnnxGraph,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import { createSession } from '@open-autoglm/runtime';
import type { DependencyAnalysis } from './analyzeDependencies.js';
import type { PruningPlan } from './planPruning.js';
import type { FeedBatch } from './recalibrateBatchNorm.js';

/**
 * One layer that reads removed units and has a bias to absorb their average contribution.
 * Indices are positions along the layer's input feature axis (channels for Conv, features for
 * Gemm/MatMul, where a flattened channel covers a block of features).
 */
export interface BiasCompensationTarget {
  readonly node: string;
  /** The activation the layer reads, and the axis of its features. */
  readonly input: string;
  readonly inputAxis: number;
  readonly weight: string;
  /** Axis of the weight along the input features, and along the outputs. */
  readonly weightInputAxis: number;
  readonly weightOutputAxis: number;
  readonly bias: string;
  readonly removed: readonly number[];
}

/**
 * The layers whose inputs lose units under `plan` and that have a constant bias: Conv (group 1)
 * with a bias, Gemm with a bias C of one value per output, MatMul followed by an Add of a
 * constant vector (the exporter's Linear). Layers without a bias are left out (adding one would
 * change the parameter count the plan predicts).
 */
export function biasCompensationTargets(graph: OnnxGraph, analysis: DependencyAnalysis, plan: PruningPlan): BiasCompensationTarget[] {
  const targets: BiasCompensationTarget[] = [];
  const nodesByName = new Map(graph.nodes.filter((n) => n.name !== '').map((n) => [n.name, n]));
  for (const group of analysis.groups) {
    const kept = plan.get(group.name);
    if (kept === undefined) continue;
    const keptSet = new Set(kept);
    for (const member of group.members) {
      if (member.kind !== 'tensor' || member.role !== 'in') continue;
      const node = nodesByName.get(member.node);
      if (node === undefined) continue;
      const perUnit = Math.round(member.perBase * group.unitSize);
      const weight = graph.constantValue(member.tensor);
      if (weight === undefined) continue;
      const inFeatures = tensorDims(weight)[member.axis] as number;
      const removed: number[] = [];
      for (let i = 0; i < inFeatures; i++) if (!keptSet.has(Math.floor(i / perUnit))) removed.push(i);
      let bias: string | undefined;
      let inputAxis: number;
      let weightOutputAxis: number;
      if (node.opType === 'Conv') {
        bias = node.input[2];
        inputAxis = 1;
        weightOutputAxis = 0;
        if (getIntAttribute(node, 'group', 1) !== 1) continue;
      } else if (node.opType === 'Gemm') {
        bias = node.input[2];
        inputAxis = getIntAttribute(node, 'transA', 0) === 1 ? 0 : 1;
        weightOutputAxis = member.axis === 1 ? 0 : 1;
        // The fold below assumes Y = A B + C; scaled terms (beta 0 drops C) are left alone.
        if (getFloatAttribute(node, 'alpha', 1) !== 1 || getFloatAttribute(node, 'beta', 1) !== 1) continue;
      } else {
        const add = graph.consumersOf(node.output[0] ?? '');
        const only = add.length === 1 ? add[0] : undefined;
        bias = only?.opType === 'Add' ? only.input.find((name) => name !== node.output[0] && graph.constantValue(name) !== undefined) : undefined;
        inputAxis = -1;
        weightOutputAxis = 1;
      }
      if (bias === undefined || bias === '' || graph.getInitializer(bias) === undefined) continue;
      const outputs = tensorDims(weight)[weightOutputAxis] as number;
      const biasTensor = graph.getInitializer(bias);
      if (biasTensor === undefined || tensorDims(biasTensor).reduce((a, b) => a * b, 1) !== outputs) continue;
      targets.push({ node: member.node, input: node.input[0] as string, inputAxis, weight: member.tensor, weightInputAxis: member.axis, weightOutputAxis, bias, removed });
    }
  }
  return targets;
}

/**
 * The mean of each input feature of every target over the calibration samples (a ReduceMean
 * over every other axis, inside the graph, so only one vector per tensor leaves onnxruntime;
 * the batches' means are weighted by their sizes). The batch axis is the first of every input.
 */
export async function measureInputMeans(model: OnnxModel, targets: readonly BiasCompensationTarget[], batches: Iterable<FeedBatch> | AsyncIterable<FeedBatch>): Promise<Map<string, Float64Array>> {
  const probe = model.clone();
  const graph = probe.graph;
  const { shapes } = inferShapes(model.proto);
  const opset = model.opsetVersion() ?? 17;
  const outputs = new Map<string, string>();
  for (const target of targets) {
    const key = `${target.input}@${target.inputAxis}`;
    if (outputs.has(key)) continue;
    const rank = shapes.get(target.input)?.dims?.length;
    if (rank === undefined) continue;
    const axis = target.inputAxis < 0 ? target.inputAxis + rank : target.inputAxis;
    const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);
    const output = graph.uniqueName(`${target.input}_feature_mean`);
    if (opset >= 18) {
      const axesName = graph.uniqueName(`${output}_axes`);
      graph.setInitializer(arrayToTensor(axesName, BigInt64Array.from(axes.map(BigInt)), [axes.length]));
      graph.addNode(makeNode('ReduceMean', [target.input, axesName], [output], { keepdims: 0 }));
    } else {
      graph.addNode(makeNode('ReduceMean', [target.input], [output], { axes, keepdims: 0 }));
    }
    graph.addOutput(makeTensorValueInfo(output, DataType.FLOAT));
    outputs.set(key, output);
  }
  const session = await createSession(probe.toBytes(), { device: 'cpu', threads: 1 }, { file: `${model.source ?? 'model'} (input means)` });
  const sums = new Map<string, Float64Array>();
  let count = 0;
  for await (const feeds of batches) {
    // Each batch's mean weighs by its samples: a short last batch must not count as a full one.
    const size = Object.values(feeds)[0]?.dims[0] ?? 0;
    if (size === 0) continue;
    const result = await session.run({ ...feeds }, [...outputs.values()]);
    for (const [key, output] of outputs) {
      const values = result[output]?.data as Float32Array;
      const sum = sums.get(key) ?? new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) sum[i] = (sum[i] as number) + (values[i] as number) * size;
      sums.set(key, sum);
    }
    count += size;
  }
  return new Map([...sums].map(([key, sum]) => [key, sum.map((v) => v / Math.max(1, count))]));
}

/**
 * Folds the average contribution of the removed input features into each target's bias:
 * `b[o] += sum over removed i (and kernel taps k) of W[o, i, k] * E[x_i]`, so that every output
 * keeps its mean when those features disappear (border effects of padded convolutions aside).
 * Edits `graph` (a copy of the model the targets were found in) before it is pruned.
 */
export function applyBiasCompensation(graph: OnnxGraph, targets: readonly BiasCompensationTarget[], means: ReadonlyMap<string, Float64Array>): number {
  let compensated = 0;
  for (const target of targets) {
    const mean = means.get(`${target.input}@${target.inputAxis}`);
    const weight = graph.constantValue(target.weight);
    const biasTensor = graph.getInitializer(target.bias);
    if (mean === undefined || weight === undefined || biasTensor === undefined) continue;
    const dims = tensorDims(weight);
    const values = tensorToArray(weight) as Float32Array;
    const bias = Float32Array.from(tensorToArray(biasTensor) as Float32Array);
    const strides = dims.map((_, d) => dims.slice(d + 1).reduce((a, b) => a * b, 1));
    const inStride = strides[target.weightInputAxis] as number;
    const outStride = strides[target.weightOutputAxis] as number;
    const outputs = dims[target.weightOutputAxis] as number;
    // Elements per (output, input) pair: the kernel taps of a convolution, 1 for a matrix.
    const taps = values.length / (outputs * (dims[target.weightInputAxis] as number));
    for (let o = 0; o < outputs; o++) {
      let delta = 0;
      for (const i of target.removed) {
        const m = mean[i] ?? 0;
        const base = o * outStride + i * inStride;
        for (let k = 0; k < taps; k++) delta += (values[base + k] as number) * m;
      }
      bias[o] = (bias[o] as number) + delta;
    }
    graph.setInitializer(arrayToTensor(target.bias, bias, tensorDims(biasTensor)));
    compensated++;
  }
  return compensated;
}
