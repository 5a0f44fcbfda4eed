import { ModelFormatError } from '@open-autoglm/core';
import { findAttribute, getFloatAttribute, getIntAttribute, makeAttribute } from '../attributes.js';
import { isDefaultDomain, OnnxGraph } from '../OnnxGraph.js';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../proto.js';
import { arrayToTensor, tensorDims, tensorToArray } from '../tensor.js';
import { nodeLabel, removeUnusedConstants } from './removeDeadNodes.js';

export interface BatchNormFoldReport {
  /** How many BatchNormalization nodes were folded away. */
  folded: number;
  /** Each folded BatchNormalization and the node it was folded into. */
  foldedInto: { batchNorm: string; into: string }[];
  /** BatchNormalization nodes left in place, with the reason. */
  notFolded: { batchNorm: string; reason: string }[];
}

const FOLDABLE_PRODUCERS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/**
 * Folds inference-mode BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it,
 * when that node's output goes nowhere else: with s = scale / sqrt(var + epsilon), every output
 * channel c of the weight is multiplied by s[c] and the bias becomes
 * s[c] * (bias[c] - mean[c]) + B[c] (a bias is created when the node had none; Gemm's beta is
 * folded in and set to 1). Computed in float64 and stored as float32. A weight or bias also read
 * by another node is copied rather than changed. The BatchNormalization node goes, its output
 * name stays (now produced by the Conv/Gemm), and its parameters are removed when nothing else
 * reads them. Edits the model in place; every BatchNormalization that cannot be folded is
 * listed with the reason and left as it was.
 */
export function foldBatchNormalization(model: ModelProto): BatchNormFoldReport {
  const graph = model.graph;
  if (graph === undefined) {
    throw new ModelFormatError('The model has no graph, so there is no BatchNormalization to fold. Re-export the model.');
  }
  const view = new OnnxGraph(graph);
  const report: BatchNormFoldReport = { folded: 0, foldedInto: [], notFolded: [] };
  const batchNorms = graph.node.filter((n) => n.opType === 'BatchNormalization' && isDefaultDomain(n.domain));
  for (const bn of batchNorms) {
    const label = nodeLabel(view, bn);
    const result = foldOne(view, bn);
    if (typeof result === 'string') {
      report.notFolded.push({ batchNorm: label, reason: result });
    } else {
      report.folded++;
      report.foldedInto.push({ batchNorm: label, into: nodeLabel(view, result) });
    }
  }
  return report;
}

/** The constant behind a name, looking through Identity nodes (exporters alias merged tensors that way). */
function constantThroughIdentity(view: OnnxGraph, name: string | undefined): TensorProto | undefined {
  for (let current = name; current !== undefined && current !== ''; ) {
    const value = view.constantValue(current);
    if (value !== undefined) return value;
    const producer = view.producerOf(current);
    if (producer?.opType !== 'Identity' || !isDefaultDomain(producer.domain)) return undefined;
    current = producer.input[0];
  }
  return undefined;
}

function floatValues(tensor: TensorProto): Float64Array | undefined {
  if (tensor.dataType !== DataType.FLOAT && tensor.dataType !== DataType.DOUBLE) return undefined;
  return Float64Array.from(tensorToArray(tensor) as Float32Array | Float64Array);
}

/** Folds one BatchNormalization; returns the node it went into, or why it could not. */
function foldOne(view: OnnxGraph, bn: NodeProto): NodeProto | string {
  if (getIntAttribute(bn, 'training_mode', 0) !== 0) return 'it runs in training mode (training_mode=1)';
  if (getIntAttribute(bn, 'spatial', 1) !== 1) return 'it normalizes per activation (spatial=0), not per channel';
  if (bn.output.slice(1).some((o) => o !== '')) return 'it also outputs running statistics';
  const x = bn.input[0] ?? '';
  const producer = view.producerOf(x);
  if (producer === undefined || !FOLDABLE_PRODUCERS.has(producer.opType) || !isDefaultDomain(producer.domain)) {
    const source = producer === undefined ? 'a graph input or constant' : `${producer.opType} node "${nodeLabel(view, producer)}"`;
    return `its input comes from ${source}, not from Conv, ConvTranspose or Gemm`;
  }
  const readers = view.consumersOf(x);
  if (readers.length !== 1 || view.isGraphOutput(x)) {
    return `the output of ${producer.opType} node "${nodeLabel(view, producer)}" is also read elsewhere, so it must stay unnormalized`;
  }
  const stats = [1, 2, 3, 4].map((i) => constantThroughIdentity(view, bn.input[i]));
  const [scale, shift, mean, variance] = stats.map((t) => (t === undefined ? undefined : floatValues(t)));
  if (scale === undefined || shift === undefined || mean === undefined || variance === undefined) {
    return 'its scale, bias, mean and variance are not all float constants';
  }
  const channels = scale.length;
  if ([shift, mean, variance].some((v) => v.length !== channels)) return 'its scale, bias, mean and variance differ in length';
  const weightName = producer.input[1] ?? '';
  const weight = constantThroughIdentity(view, weightName);
  if (weight?.dataType !== DataType.FLOAT) return `the weight of ${producer.opType} node "${nodeLabel(view, producer)}" is not a float32 constant`;
  const biasName = producer.input[2] ?? '';
  const bias = biasName === '' ? undefined : constantThroughIdentity(view, biasName);
  if (biasName !== '' && (bias === undefined || bias.dataType !== DataType.FLOAT)) {
    return `the bias of ${producer.opType} node "${nodeLabel(view, producer)}" is not a float32 constant`;
  }

  const epsilon = getFloatAttribute(bn, 'epsilon', 1e-5);
  const factor = scale.map((g, c) => g / Math.sqrt((variance[c] as number) + epsilon));
  const w = Float64Array.from(tensorToArray(weight) as Float32Array);
  const wDims = tensorDims(weight);
  let oldBias: Float64Array;
  if (producer.opType === 'Gemm') {
    const layout = gemmLayout(producer, nodeLabel(view, producer), wDims, bias, channels);
    if (typeof layout === 'string') return layout;
    const beta = getFloatAttribute(producer, 'beta', 1);
    oldBias = new Float64Array(channels);
    if (bias !== undefined) {
      const values = tensorToArray(bias) as Float32Array;
      for (let c = 0; c < channels; c++) oldBias[c] = beta * (values[values.length === 1 ? 0 : c] as number);
    }
    scaleGemmWeight(w, wDims, factor, layout.transB);
  } else {
    const outChannels = producer.opType === 'Conv' ? wDims[0] : (wDims[1] ?? 0) * getIntAttribute(producer, 'group', 1);
    if (outChannels !== channels) {
      return `${producer.opType} node "${nodeLabel(view, producer)}" has ${outChannels} output channels but the BatchNormalization has ${channels}`;
    }
    if (bias !== undefined && tensorDims(bias).join() !== String(channels)) return `the bias of "${nodeLabel(view, producer)}" is not [${channels}]`;
    oldBias = bias === undefined ? new Float64Array(channels) : Float64Array.from(tensorToArray(bias) as Float32Array);
    if (producer.opType === 'Conv') scaleConvWeight(w, wDims, factor);
    else scaleConvTransposeWeight(w, wDims, factor, getIntAttribute(producer, 'group', 1));
  }
  const newBias = oldBias.map((b, c) => (factor[c] as number) * (b - (mean[c] as number)) + (shift[c] as number));

  const replaced = [weightName, biasName];
  writeParameter(view, producer, 1, weightName, weightName, arrayToTensor(weightName, Float32Array.from(w), wDims));
  // A created bias is named like PyTorch's: `conv1.weight` -> `conv1.bias`.
  const biasFallback = weightName.endsWith('.weight') ? `${weightName.slice(0, -'.weight'.length)}.bias` : `${weightName}_bias`;
  writeParameter(view, producer, 2, biasName, biasFallback, arrayToTensor(biasName, Float32Array.from(newBias), [channels]));
  if (producer.opType === 'Gemm' && findAttribute(producer, 'beta') !== undefined) {
    producer.attribute = producer.attribute.map((a) => (a.name === 'beta' ? makeAttribute('beta', 1, true) : a));
  }

  // The producer now writes the BatchNormalization's output, so its readers and graph outputs keep their name.
  const output = bn.output[0] ?? '';
  view.removeNode(bn);
  producer.output[0] = output;
  view.invalidate();
  view.removeValueInfo(x);
  removeUnusedConstants(view, [...bn.input.slice(1), ...replaced]);
  return producer;
}

/**
 * Stores a folded weight or bias as input `slot` of `node`: in place when `current` is an
 * initializer that only this node reads, else as a new initializer (the old tensor may be
 * shared, or not be an initializer at all).
 */
function writeParameter(view: OnnxGraph, node: NodeProto, slot: number, current: string, fallbackName: string, tensor: TensorProto): void {
  const owned =
    current !== '' &&
    view.getInitializer(current) !== undefined &&
    !view.isGraphInput(current) &&
    !view.isGraphOutput(current) &&
    view.consumersOf(current).every((reader) => reader === node) &&
    node.input.filter((i) => i === current).length === 1;
  tensor.name = owned ? current : view.uniqueName(current !== '' ? `${current}_bn_folded` : fallbackName);
  view.setInitializer(tensor);
  view.setNodeInput(node, slot, tensor.name);
}

function gemmLayout(
  gemm: NodeProto,
  label: string,
  wDims: readonly number[],
  bias: TensorProto | undefined,
  channels: number,
): { transB: boolean } | string {
  const transB = getIntAttribute(gemm, 'transB', 0) === 1;
  const outFeatures = transB ? wDims[0] : wDims[1];
  if (wDims.length !== 2 || outFeatures !== channels) {
    return `Gemm node "${label}" has ${outFeatures} outputs but the BatchNormalization has ${channels} channels`;
  }
  if (bias !== undefined) {
    const dims = tensorDims(bias);
    const perChannel = dims.length <= 2 && dims.slice(0, -1).every((d) => d === 1) && (dims.at(-1) === channels || dims.at(-1) === 1 || dims.length === 0);
    if (!perChannel) return `the C input of Gemm node "${label}" has shape [${dims.join(', ')}], not one value per output`;
  }
  return { transB };
}

/** Conv weight [M, C/group, k...]: output channel m is the first axis. */
function scaleConvWeight(w: Float64Array, dims: readonly number[], factor: Float64Array): void {
  const perChannel = w.length / (dims[0] as number);
  for (let i = 0; i < w.length; i++) w[i] = (w[i] as number) * (factor[Math.floor(i / perChannel)] as number);
}

/** ConvTranspose weight [C, M/group, k...]: input channel c of group g feeds output g * M/group + j. */
function scaleConvTransposeWeight(w: Float64Array, dims: readonly number[], factor: Float64Array, group: number): void {
  const inChannels = dims[0] as number;
  const outPerGroup = dims[1] as number;
  const kernel = w.length / (inChannels * outPerGroup);
  const inPerGroup = inChannels / group;
  for (let c = 0; c < inChannels; c++) {
    const g = Math.floor(c / inPerGroup);
    for (let j = 0; j < outPerGroup; j++) {
      const f = factor[g * outPerGroup + j] as number;
      const base = (c * outPerGroup + j) * kernel;
      for (let k = 0; k < kernel; k++) w[base + k] = (w[base + k] as number) * f;
    }
  }
}

/** Gemm weight: [N, K] with transB, else [K, N]; output n is scaled. */
function scaleGemmWeight(w: Float64Array, dims: readonly number[], factor: Float64Array, transB: boolean): void {
  const cols = dims[1] as number;
  for (let i = 0; i < w.length; i++) {
    const n = transB ? Math.floor(i / cols) : i % cols;
    w[i] = (w[i] as number) * (factor[n] as number);
  }
}
