import { ModelFormatError } from '@open-autoglm/core';
import { getIntAttribute } from './attributes.js';
import { isDefaultDomain, OnnxGraph } from './OnnxGraph.js';
import { DataType, type ModelProto, type NodeProto } from './proto.js';
import { type Dim, inferShapes } from './inferShapes.js';
import { elementCount } from './tensor.js';

export interface ModelStatsOptions {
  /**
   * Size bound to the batch axis: every symbolic leading dim of the graph inputs (`batch` in
   * the fixtures). Default 1. MACs are divided by it, so they stay per sample.
   */
  batch?: number;
  /** Values for other symbolic dims (e.g. `{ sequence: 128 }`); needed when MACs depend on them. The batch axis is bound by `batch`. */
  dims?: Readonly<Record<string, number>>;
}

export interface NodeStats {
  /** Node name, or `<opType>#<index>` for unnamed nodes. */
  node: string;
  opType: string;
  /** Parameters first read by this node (each parameter tensor is counted at one node only). */
  params: number;
  /** Multiply-accumulates per sample; undefined when a needed dim is unknown. */
  macs: number | undefined;
  /** Shape of the node's first output with the batch bound, or undefined when unknown. */
  outputShape: Dim[] | undefined;
}

export interface ModelStats {
  /** Parameters as PyTorch counts them (see `countModelStats`). */
  params: number;
  /** Multiply-accumulates per sample of the counted ops. */
  macs: number;
  /** One entry per node, in topological order. */
  perNode: NodeStats[];
  /** Nodes whose MACs could not be counted because a dim is unknown (bind it with `dims`). */
  uncounted: string[];
}

/** Inputs that configure an op rather than hold learned values (BatchNorm statistics, shapes, scales). */
const NON_PARAMETER_INPUTS: ReadonlyMap<string, readonly number[]> = new Map([
  ['BatchNormalization', [3, 4]],
  ['Resize', [1, 2, 3]],
  ['Upsample', [1]],
  ['Clip', [1, 2]],
  ['Pad', [1, 2, 3]],
  ['QuantizeLinear', [1, 2]],
  ['DequantizeLinear', [1, 2]],
  ['Reshape', [1]],
  ['Expand', [1]],
  ['Tile', [1]],
  ['Slice', [1, 2, 3, 4]],
  ['Squeeze', [1]],
  ['Unsqueeze', [1]],
  ['Split', [1]],
  ['TopK', [1]],
  ['Gather', [1]],
  ['GatherElements', [1]],
  ['Range', [0, 1, 2]],
  ['ConstantOfShape', [0]],
  ['Shape', [0]],
  ['Size', [0]],
  ['Dropout', [1, 2]],
  ['Identity', [0]],
]);

/** Inputs that are weights even when they hold a single value (a 1x1 Linear, PReLU's shared slope). */
const WEIGHT_INPUTS: ReadonlyMap<string, readonly number[]> = new Map([
  ['Conv', [1, 2]],
  ['ConvTranspose', [1, 2]],
  ['Gemm', [0, 1, 2]],
  ['MatMul', [0, 1]],
  ['BatchNormalization', [1, 2]],
  ['LayerNormalization', [1, 2]],
  ['InstanceNormalization', [1, 2]],
  ['GroupNormalization', [1, 2]],
  ['PRelu', [1]],
]);

const FLOAT_TYPES = new Set<DataType>([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/**
 * Parameters and MACs of a model, per node and in total.
 *
 * Parameters are what PyTorch's `sum(p.numel() for p in model.parameters())` counts, read from
 * the initializers: a float initializer is a parameter when a node reads it as a learned input
 * (Conv/ConvTranspose/Gemm/MatMul weights and biases, BatchNorm and LayerNorm scale and bias,
 * embedding tables read by Gather, biases and position tables added with Add, ...). Not counted:
 * BatchNorm running mean and variance, integer tensors (shapes, axes, indices), inputs that
 * configure an op (Resize scales, Clip bounds, Q/DQ scales), single-value constants outside a
 * weight input, and Constant nodes (exporters keep parameters in initializers). A tensor read
 * through an `Identity` counts again: exporters merge identical parameters and read the copy
 * through an Identity, which PyTorch still counts twice. Quantized weights (the input of a
 * DequantizeLinear) count whatever their type. A tensor read by several nodes counts once.
 *
 * MACs are multiply-accumulates per sample of Conv, ConvTranspose, Gemm and MatMul (and their
 * integer forms), MatMul between two activations included (the attention products QK^T and
 * P·V): Conv = output elements x (input channels / group) x kernel size; ConvTranspose = input
 * elements x (output channels / group) x kernel size; Gemm/MatMul = output elements x inner
 * dimension. Bias additions, BatchNorm, activations, pooling, softmax, LayerNorm and embedding
 * lookups are not counted. Shapes come from `inferShapes` with the batch axis bound to
 * `options.batch` (default 1); totals are divided by it.
 */
export function countModelStats(model: ModelProto, options: ModelStatsOptions = {}): ModelStats {
  const graph = model.graph;
  if (graph === undefined) {
    throw new ModelFormatError('The model has no graph, so there is nothing to count. Re-export the model.');
  }
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new ModelFormatError(`countModelStats: batch must be a positive integer, got ${batch}. Pass e.g. { batch: 1 }.`);
  }
  const view = new OnnxGraph(graph);
  const batchSymbols = new Set<string>();
  for (const input of view.inputs) {
    const first = input.type?.value.case === 'tensorType' ? input.type.value.value.shape?.dim[0]?.value : undefined;
    if (first?.case === 'dimParam') batchSymbols.add(first.value);
  }
  const bindings: Record<string, number> = { ...options.dims };
  for (const symbol of batchSymbols) bindings[symbol] = batch;
  const { shapes } = inferShapes(model, { dims: bindings });
  // A model with a fixed leading dim has no batch axis to divide by: its counts are per run.
  const batchDivisor = batchSymbols.size > 0 ? batch : 1;

  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  // Identity copies of parameters are parameters of their own (see above).
  const aliases = new Map<string, string>();
  for (const node of view.topologicalOrder()) {
    const source = node.input[0];
    const output = node.output[0];
    if (node.opType !== 'Identity' || source === undefined || output === undefined) continue;
    if (initializers.has(source) || aliases.has(source)) aliases.set(output, aliases.get(source) ?? source);
  }

  const counted = new Set<string>();
  const perNode: NodeStats[] = [];
  const uncounted: string[] = [];
  let params = 0;
  let macs = 0;
  for (const node of view.topologicalOrder()) {
    const label = node.name !== '' ? node.name : `${node.opType}#${view.indexOfNode(node)}`;
    let nodeParams = 0;
    node.input.forEach((name, slot) => {
      if (name === '' || counted.has(name)) return;
      const tensor = initializers.get(aliases.get(name) ?? name);
      if (tensor === undefined) return;
      const elements = elementCount(tensor.dims);
      if (!isParameterInput(node, slot, tensor.dataType, elements)) return;
      counted.add(name);
      nodeParams += elements;
    });
    const nodeMacs = isDefaultDomain(node.domain) ? macsOf(node, (name) => shapes.get(name)?.dims) : 0;
    if (nodeMacs === undefined) uncounted.push(label);
    const perSample = nodeMacs === undefined ? undefined : nodeMacs / batchDivisor;
    params += nodeParams;
    macs += perSample ?? 0;
    perNode.push({
      node: label,
      opType: node.opType,
      params: nodeParams,
      macs: perSample,
      outputShape: shapes.get(node.output[0] ?? '')?.dims,
    });
  }
  return { params, macs, perNode, uncounted };
}

/**
 * True when input `slot` of `node`, an initializer of `dataType` with `elements` values, is a
 * parameter as PyTorch counts them (the rule `countModelStats` applies; `buildTrainingStep`
 * uses it to pick the default trainable parameters).
 */
export function isParameterInput(node: NodeProto, slot: number, dataType: DataType, elements: number): boolean {
  if (!isDefaultDomain(node.domain)) return FLOAT_TYPES.has(dataType) && elements > 1;
  if (node.opType === 'DequantizeLinear') return slot === 0;
  if (!FLOAT_TYPES.has(dataType)) return false;
  if (NON_PARAMETER_INPUTS.get(node.opType)?.includes(slot) === true) return false;
  // Every Reduce* op takes its axes as input 1 (from opset 13/18).
  if (node.opType.startsWith('Reduce') && slot === 1) return false;
  return elements > 1 || WEIGHT_INPUTS.get(node.opType)?.includes(slot) === true;
}

type DimsOf = (name: string) => Dim[] | undefined;

/** The numeric dims of a tensor, or undefined when any is symbolic or unknown. */
function staticDims(dimsOf: DimsOf, name: string | undefined): number[] | undefined {
  const dims = name === undefined ? undefined : dimsOf(name);
  return dims?.every((d) => typeof d === 'number') === true ? (dims as number[]) : undefined;
}

/** Total MACs of one node at the bound batch (0 for ops that are not counted). */
function macsOf(node: NodeProto, dimsOf: DimsOf): number | undefined {
  const [x, w] = node.opType === 'QLinearConv' || node.opType === 'QLinearMatMul' ? [node.input[0], node.input[3]] : [node.input[0], node.input[1]];
  switch (node.opType) {
    case 'Conv':
    case 'ConvInteger':
    case 'QLinearConv': {
      const out = staticDims(dimsOf, node.output[0]);
      const weight = staticDims(dimsOf, w);
      return out === undefined || weight === undefined ? undefined : elementCount(out) * elementCount(weight.slice(1));
    }
    case 'ConvTranspose': {
      const input = staticDims(dimsOf, x);
      const weight = staticDims(dimsOf, w);
      return input === undefined || weight === undefined ? undefined : elementCount(input) * elementCount(weight.slice(1));
    }
    case 'Gemm': {
      const out = staticDims(dimsOf, node.output[0]);
      const a = staticDims(dimsOf, x);
      if (out === undefined || a === undefined) return undefined;
      const inner = getIntAttribute(node, 'transA', 0) === 1 ? a[0] : a[1];
      return inner === undefined ? undefined : elementCount(out) * inner;
    }
    case 'MatMul':
    case 'MatMulInteger':
    case 'QLinearMatMul': {
      const out = staticDims(dimsOf, node.output[0]);
      const a = staticDims(dimsOf, x);
      const inner = a?.[a.length - 1];
      return out === undefined || inner === undefined ? undefined : elementCount(out) * inner;
    }
    default:
      return 0;
  }
}
