import { DataType, getIntAttribute, getFloatAttribute, inferShapes, type NodeProto, type OnnxGraph, type OnnxModel } from '@open-autoglm/onnx';

/** Ops quantized with their own integer kernel in ORT (QLinearConv, QGemm, QLinearAdd, ...). */
export const COMPUTE_OPS: ReadonlySet<string> = new Set([
  'Conv',
  'ConvTranspose',
  'Gemm',
  'MatMul',
  'Add',
  'Mul',
  'Concat',
  'GlobalAveragePool',
  'AveragePool',
]);

/**
 * Ops that only move or select values: their output reuses their input's scale and zero point,
 * so ORT drops the Q/DQ pair around them and runs them on the integers directly.
 */
export const PASS_THROUGH_OPS: ReadonlySet<string> = new Set([
  'MaxPool',
  'Reshape',
  'Transpose',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Resize',
  'Gather',
]);

/** Why a node that could have been quantized stays float. */
export interface FloatNode {
  readonly node: string;
  readonly opType: string;
  readonly reason: string;
}

/** A weight to store as int8 (symmetric) with a DequantizeLinear in front of its node. */
export interface WeightPlan {
  readonly node: NodeProto;
  readonly slot: number;
  /** Axis of the output channels, or undefined for one scale for the whole tensor. */
  readonly axis: number | undefined;
  /** Input slot of the bias quantized to int32 with scale s_input * s_weight, when there is one. */
  readonly biasSlot: number | undefined;
}

export interface StaticQuantizationPlan {
  /** Nodes that get DequantizeLinear inputs and a quantized output. */
  readonly nodes: ReadonlySet<NodeProto>;
  /** Activations to quantize, in topological order. */
  readonly tensors: readonly string[];
  /** Pass-through outputs and the tensor whose parameters they share. */
  readonly sharedParameters: ReadonlyMap<string, string>;
  /**
   * Relus whose input is the output of a quantized compute node read by nothing else: the Relu is
   * dropped, the node writes the Relu's output directly, and that tensor is quantized with the
   * Relu output's range (zero point at the bottom of the integer range), so QuantizeLinear's
   * saturation computes the ReLU. Relu output -> the Relu node.
   */
  readonly foldedRelus: ReadonlyMap<string, NodeProto>;
  readonly weights: readonly WeightPlan[];
  readonly floatNodes: readonly FloatNode[];
}

export interface PlanOptions {
  /** Op types or node names to keep float. */
  readonly exclude?: readonly string[];
  /** Per-channel weight scales (default true). */
  readonly perChannel?: boolean;
  /**
   * Keep float a Conv with one input channel (group 1: a first layer on grayscale images)
   * unless a pooling or reshaping op reads its output (default true). onnxruntime's QLinearConv
   * runs it as an im2col GEMM over only kH*kW values, 3-4x slower than the float kernel on x86
   * (measured: resnet8's 1->16 3x3 conv 22 us in INT8, 6 us in float; the model 1.47x -> 1.65x
   * faster than fp32 at batch 1). Read by MaxPool it stays INT8: onnxruntime would move the
   * QuantizeLinear above the MaxPool and run a slow uint8 NCHW MaxPool (vgg11bn 1.59x -> 1.52x).
   * Modes that measure each layer (automatic mixed precision, per-layer search) turn it off.
   */
  readonly floatSingleChannelConv?: boolean;
}

const SINGLE_CHANNEL_CONV_REASON =
  'a Conv with one input channel runs 3-4x slower as QLinearConv (im2col over kH*kW values) than in float on x86; ' +
  'floatSingleChannelConv: false quantizes it';

/**
 * Decides which nodes, activations and weights a static QDQ quantization touches. A compute op
 * is quantized when its data inputs are float activations (for Add, Mul and Concat: every input)
 * and its weight, if any, is a constant; a pass-through op when its input is quantized.
 * Graph outputs stay float (ORT then produces float directly from QGemm/MatMulIntegerToFloat).
 */
export function planStaticQuantization(model: OnnxModel, options: PlanOptions = {}): StaticQuantizationPlan {
  const graph = model.graph;
  const exclude = new Set(options.exclude ?? []);
  const perChannel = options.perChannel ?? true;
  const floatSingleChannelConv = options.floatSingleChannelConv ?? true;
  const types = inferShapes(model.proto).shapes;
  const isFloatActivation = (name: string): boolean =>
    name !== '' && !graph.isConstant(name) && (types.get(name)?.dataType ?? DataType.UNDEFINED) === DataType.FLOAT;
  const nodes = new Set<NodeProto>();
  const tensors: string[] = [];
  const tensorSet = new Set<string>();
  const sharedParameters = new Map<string, string>();
  const weights: WeightPlan[] = [];
  const floatNodes: FloatNode[] = [];
  const foldedRelus = new Map<string, NodeProto>();
  const maskTensors = maskDerivedTensors(model, types);
  const addTensor = (name: string): void => {
    if (tensorSet.has(name) || graph.isGraphOutput(name)) return;
    tensorSet.add(name);
    tensors.push(name);
  };

  for (const node of graph.topologicalOrder()) {
    const op = node.opType;
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    if (op === 'Relu') {
      const input = node.input[0] ?? '';
      const output = node.output[0] ?? '';
      const producer = graph.producerOf(input);
      if (
        producer !== undefined &&
        nodes.has(producer) &&
        COMPUTE_OPS.has(producer.opType) &&
        tensorSet.has(input) &&
        graph.consumersOf(input).length === 1 &&
        !graph.isGraphOutput(output) &&
        !exclude.has(node.name)
      ) {
        foldedRelus.set(output, node);
        tensorSet.delete(input);
        tensorSet.add(output);
        tensors[tensors.indexOf(input)] = output;
      }
      continue;
    }
    if (!COMPUTE_OPS.has(op) && !PASS_THROUGH_OPS.has(op)) continue;
    const keepFloat = (reason: string): void => {
      floatNodes.push({ node: node.name, opType: op, reason });
    };
    if (exclude.has(node.name) || exclude.has(op)) {
      keepFloat('excluded by the caller');
      continue;
    }
    const output = node.output[0] ?? '';
    const mask = COMPUTE_OPS.has(op) ? node.input.find((name) => maskTensors.has(name)) : undefined;
    if (mask !== undefined) {
      keepFloat(`input "${mask}" is computed from an integer input (an attention mask); quantizing it would flatten the real values`);
      continue;
    }
    if (PASS_THROUGH_OPS.has(op)) {
      const input = node.input[0] ?? '';
      if (!tensorSet.has(input) || !isFloatActivation(output)) continue;
      if (graph.isGraphOutput(output)) continue;
      nodes.add(node);
      sharedParameters.set(output, sharedParameters.get(input) ?? input);
      addTensor(output);
      continue;
    }
    const weight = weightSlotOf(node, graph.isConstant.bind(graph));
    if (weight === 'unsupported') {
      keepFloat(unsupportedReason(node));
      continue;
    }
    if (floatSingleChannelConv && isSingleChannelConv(node, graph) && !readByPassThrough(node, graph)) {
      keepFloat(SINGLE_CHANNEL_CONV_REASON);
      continue;
    }
    const dataSlots = dataSlotsOf(node, weight?.slot);
    const nonFloat = dataSlots.filter((slot) => !isFloatActivation(node.input[slot] ?? ''));
    if (nonFloat.length > 0) {
      keepFloat(`input ${nonFloat.map((s) => `"${node.input[s]}"`).join(', ')} is a constant or not float32, which ${op} cannot quantize`);
      continue;
    }
    nodes.add(node);
    for (const slot of dataSlots) addTensor(node.input[slot] as string);
    if (isFloatActivation(output)) addTensor(output);
    if (weight !== undefined) {
      weights.push({
        node,
        slot: weight.slot,
        axis: perChannel ? weight.axis : undefined,
        biasSlot: weight.biasSlot !== undefined && graph.isConstant(node.input[weight.biasSlot] ?? '') ? weight.biasSlot : undefined,
      });
    }
  }

  return { nodes, tensors, sharedParameters, foldedRelus, weights, floatNodes };
}

/**
 * Float tensors computed only from integer data (and constants): the additive attention masks
 * of transformers (`Cast(Equal(ids, pad)) * -10000`). Quantized together with the scores they
 * are added to, their huge range takes every level and attention turns uniform, so the ops that
 * read them stay float.
 */
function maskDerivedTensors(model: OnnxModel, types: ReadonlyMap<string, { dataType: DataType }>): Set<string> {
  const graph = model.graph;
  const integerOnly = new Set<string>();
  for (const input of graph.inputs) if (types.get(input.name)?.dataType !== DataType.FLOAT) integerOnly.add(input.name);
  const masks = new Set<string>();
  for (const node of graph.topologicalOrder()) {
    const dynamic = node.input.filter((name) => name !== '' && !graph.isConstant(name));
    if (dynamic.length === 0 || !dynamic.every((name) => integerOnly.has(name))) continue;
    // An embedding lookup (Gather of a float table by ids) starts a real activation path.
    if (node.opType === 'Gather' && graph.isConstant(node.input[0] ?? '')) continue;
    for (const output of node.output) {
      integerOnly.add(output);
      if (types.get(output)?.dataType === DataType.FLOAT) masks.add(output);
    }
  }
  return masks;
}

/** A Conv without groups whose weight [C_out, C_in, ...] has one input channel. */
function isSingleChannelConv(node: NodeProto, graph: OnnxGraph): boolean {
  if (node.opType !== 'Conv' || getIntAttribute(node, 'group', 1) !== 1) return false;
  const weight = graph.constantValue(node.input[1] ?? '');
  return weight !== undefined && weight.dims.length >= 3 && Number(weight.dims[1]) === 1;
}

/** Whether a pass-through op reads the node's output, directly or after the one Relu reading it. */
function readByPassThrough(node: NodeProto, graph: OnnxGraph): boolean {
  let readers = graph.consumersOf(node.output[0] ?? '');
  const only = readers[0];
  if (readers.length === 1 && only?.opType === 'Relu') readers = graph.consumersOf(only.output[0] ?? '');
  return readers.some((reader) => PASS_THROUGH_OPS.has(reader.opType));
}

interface WeightSlot {
  readonly slot: number;
  readonly axis: number | undefined;
  readonly biasSlot: number | undefined;
}

/** Where a node's constant weight is, undefined when it has none, 'unsupported' when it cannot be quantized. */
function weightSlotOf(node: NodeProto, isConstant: (name: string) => boolean): WeightSlot | undefined | 'unsupported' {
  switch (node.opType) {
    case 'Conv':
      return isConstant(node.input[1] ?? '') ? { slot: 1, axis: 0, biasSlot: node.input[2] ? 2 : undefined } : 'unsupported';
    case 'ConvTranspose':
      if (!isConstant(node.input[1] ?? '')) return 'unsupported';
      // The weight is [C_in, C_out / group, ...]: per-channel on axis 1 only without groups.
      return { slot: 1, axis: getIntAttribute(node, 'group', 1) === 1 ? 1 : undefined, biasSlot: node.input[2] ? 2 : undefined };
    case 'Gemm': {
      if (getIntAttribute(node, 'transA', 0) !== 0) return 'unsupported';
      if (getFloatAttribute(node, 'alpha', 1) !== 1 || getFloatAttribute(node, 'beta', 1) !== 1) return 'unsupported';
      if (!isConstant(node.input[1] ?? '')) return 'unsupported';
      return { slot: 1, axis: getIntAttribute(node, 'transB', 0) === 1 ? 0 : 1, biasSlot: node.input[2] ? 2 : undefined };
    }
    case 'MatMul':
      // One scale for the whole weight: QLinearMatMul's per-column scales are not fused everywhere.
      return isConstant(node.input[1] ?? '') ? { slot: 1, axis: undefined, biasSlot: undefined } : undefined;
    default:
      return undefined;
  }
}

function unsupportedReason(node: NodeProto): string {
  if (node.opType === 'Gemm') return 'Gemm with transA, alpha or beta other than the defaults, or a non-constant B, has no integer kernel';
  return `${node.opType} with a non-constant weight has no integer kernel`;
}

/** The input slots holding activations to quantize. */
function dataSlotsOf(node: NodeProto, weightSlot: number | undefined): number[] {
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
    case 'Gemm':
    case 'GlobalAveragePool':
    case 'AveragePool':
      return [0];
    case 'MatMul':
      return weightSlot === undefined ? [0, 1] : [0];
    default:
      return node.input.map((_, slot) => slot).filter((slot) => node.input[slot] !== '');
  }
}
