import { ConfigError } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  makeNode,
  type NodeProto,
  type OnnxGraph,
  type OnnxModel,
  type TensorProto,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import type { StaticQuantizationPlan, WeightPlan } from './planStaticQuantization.js';
import {
  type ActivationType,
  activationParameters,
  integerRange,
  type QuantizationParameters,
  quantizeValue,
  roundHalfToEven,
  symmetricWeightScale,
  type TensorRange,
} from './quantizationParameters.js';

/** The parameters given to one quantized activation. */
export interface QuantizedActivation extends QuantizationParameters {
  readonly tensor: string;
  readonly type: ActivationType;
  /** The tensor whose parameters it shares (pass-through outputs), or itself. */
  readonly parametersOf: string;
  /** Output of its first DequantizeLinear (the value readers see), once inserted. */
  dequantized?: string;
}

/** One weight stored as int8. */
export interface QuantizedWeight {
  readonly node: string;
  readonly weight: string;
  readonly axis: number | undefined;
  readonly scales: readonly number[];
  /** Whether the node's bias went to int32 as well. */
  readonly bias: boolean;
}

export interface QdqInsertion {
  readonly activations: readonly QuantizedActivation[];
  readonly weights: readonly QuantizedWeight[];
}

/**
 * Rewrites the model in place following `plan`: folded Relus removed, int8 weights and int32
 * biases behind DequantizeLinear, and every planned activation followed by one QuantizeLinear
 * and one DequantizeLinear per reading node (a dedicated DQ per consumer, so each node forms its
 * own DQ -> op -> Q unit for ORT's fusion). `ranges` holds the calibrated range of each planned
 * activation that does not share its parameters.
 */
export function insertQdq(
  model: OnnxModel,
  plan: StaticQuantizationPlan,
  ranges: ReadonlyMap<string, TensorRange>,
  activationType: ActivationType,
): QdqInsertion {
  const graph = model.graph;
  const parameters = new Map<string, QuantizedActivation>();
  for (const tensor of plan.tensors) {
    const parametersOf = plan.sharedParameters.get(tensor) ?? tensor;
    const range = ranges.get(parametersOf);
    if (range === undefined) {
      throw new ConfigError(`No calibration range for tensor "${parametersOf}"; calibrate every tensor the plan quantizes.`);
    }
    parameters.set(tensor, { tensor, type: activationType, parametersOf, ...activationParameters(range, activationType) });
  }
  for (const [reluOutput, relu] of plan.foldedRelus) {
    const producer = graph.producerOf(relu.input[0] ?? '');
    if (producer === undefined) continue;
    graph.removeValueInfo(producer.output[0] ?? '');
    graph.removeNode(relu);
    producer.output[0] = reluOutput;
    graph.invalidate();
  }
  const stored = new Map<string, StoredWeight>();
  const weights = plan.weights.map((weight) => quantizeWeight(graph, weight, parameters, stored));
  for (const tensor of plan.tensors) quantizeActivation(graph, parameters.get(tensor) as QuantizedActivation);
  return { activations: [...parameters.values()], weights };
}

function quantizeActivation(graph: OnnxGraph, activation: QuantizedActivation): void {
  const { tensor } = activation;
  const readers = [...graph.consumersOf(tensor)];
  if (readers.length === 0) return;
  const elementType = activation.type === 'uint8' ? DataType.UINT8 : DataType.INT8;
  const scale = graph.uniqueName(`${tensor}_scale`);
  const zeroPoint = graph.uniqueName(`${tensor}_zero_point`);
  graph.setInitializer(arrayToTensor(scale, Float32Array.of(activation.scale), []));
  graph.setInitializer(
    arrayToTensor(
      zeroPoint,
      activation.type === 'uint8' ? Uint8Array.of(activation.zeroPoint) : Int8Array.of(activation.zeroPoint),
      [],
      elementType,
    ),
  );
  const quantized = graph.uniqueName(`${tensor}_quantized`);
  const quantize = makeNode('QuantizeLinear', [tensor, scale, zeroPoint], [quantized], {}, graph.uniqueName(`${tensor}_QuantizeLinear`));
  const producer = graph.producerOf(tensor);
  if (producer === undefined) graph.insertNodeBefore(graph.nodes[0] as NodeProto, quantize);
  else graph.insertNodeAfter(producer, quantize);
  for (const reader of readers) {
    const dequantized = graph.uniqueName(`${tensor}_dequantized`);
    activation.dequantized ??= dequantized;
    graph.insertNodeBefore(
      reader,
      makeNode('DequantizeLinear', [quantized, scale, zeroPoint], [dequantized], {}, graph.uniqueName(`${tensor}_DequantizeLinear`)),
    );
    reader.input.forEach((name, slot) => {
      if (name === tensor) graph.setNodeInput(reader, slot, dequantized);
    });
  }
}

/** An int8 weight already stored, with its scales and zero points, for the next node reading the same float weight. */
interface StoredWeight {
  readonly quantized: string;
  readonly scale: string;
  readonly zeroPoint: string;
}

/** Largest int32: a bias quantized beyond it would be clipped, silently changing the layer's output. */
const INT32_MAX = 2 ** 31 - 1;

function quantizeWeight(
  graph: OnnxGraph,
  plan: WeightPlan,
  activations: ReadonlyMap<string, QuantizedActivation>,
  stored: Map<string, StoredWeight>,
): QuantizedWeight {
  const { node } = plan;
  const weightName = node.input[plan.slot] as string;
  const weight = graph.constantValue(weightName);
  if (weight === undefined || weight.dataType !== DataType.FLOAT) {
    throw new ConfigError(`Weight "${weightName}" of node "${node.name}" is not a float32 constant and cannot be quantized.`);
  }
  const dims = tensorDims(weight);
  const values = tensorToArray(weight) as Float32Array;
  const axis = plan.axis !== undefined && plan.axis < dims.length ? plan.axis : undefined;
  const channels = axis === undefined ? 1 : (dims[axis] as number);
  const inner = axis === undefined ? values.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number): number => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const absMax = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) {
    const c = channelOf(i);
    absMax[c] = Math.max(absMax[c] as number, Math.abs(values[i] as number));
  }
  let scales = Array.from(absMax, (m) => symmetricWeightScale(m));

  const input = activations.get(node.input[0] ?? '');
  const bias = plan.biasSlot === undefined || input === undefined ? undefined : int32BiasOf(graph, node, plan.biasSlot, scales.length);
  if (bias !== undefined && input !== undefined) scales = widenForInt32Bias(scales, bias.values, input.scale);

  // Nodes reading one float weight (tied weights) read one int8 copy: half the storage, and
  // quantization-aware training keeps the tie. A different axis or scale gets its own copy.
  const key = JSON.stringify([weightName, axis, scales]);
  const base = node.name === '' ? weightName : `${node.name}.weight`;
  let shared = stored.get(key);
  if (shared === undefined) {
    const { qmin, qmax } = integerRange('int8', true);
    const quantized = new Int8Array(values.length);
    for (let i = 0; i < values.length; i++) {
      quantized[i] = quantizeValue(values[i] as number, { scale: scales[channelOf(i)] as number, zeroPoint: 0 }, qmin, qmax);
    }
    shared = addQuantizedInitializers(graph, base, quantized, dims, scales, axis, DataType.INT8);
    stored.set(key, shared);
  }
  graph.setNodeInput(node, plan.slot, addDequantize(graph, node, base, shared, axis));
  removeIfUnused(graph, weightName);

  if (bias === undefined || input === undefined) return { node: node.name, weight: weightName, axis, scales, bias: false };
  const perChannel = scales.length > 1;
  const biasScales = scales.map((s) => Math.fround(s * input.scale));
  const biasQuantized = Int32Array.from(bias.values, (b, i) => clampInt32(roundHalfToEven(b / (biasScales[perChannel ? i : 0] as number))));
  const biasBase = node.name === '' ? bias.name : `${node.name}.bias`;
  const biasStored = addQuantizedInitializers(graph, biasBase, biasQuantized, tensorDims(bias.tensor), biasScales, perChannel ? 0 : undefined, DataType.INT32);
  graph.setNodeInput(node, plan.biasSlot as number, addDequantize(graph, node, biasBase, biasStored, perChannel ? 0 : undefined));
  removeIfUnused(graph, bias.name);
  return { node: node.name, weight: weightName, axis, scales, bias: true };
}

/** The node's float bias when it can go to int32 (a constant vector, one value per weight scale when per channel). */
function int32BiasOf(
  graph: OnnxGraph,
  node: NodeProto,
  slot: number,
  channels: number,
): { name: string; tensor: TensorProto; values: Float32Array } | undefined {
  const name = node.input[slot] as string;
  const tensor = graph.constantValue(name);
  if (tensor === undefined || tensor.dataType !== DataType.FLOAT) return undefined;
  const values = tensorToArray(tensor) as Float32Array;
  if (tensorDims(tensor).length !== 1 || (channels > 1 && values.length !== channels)) return undefined;
  return { name, tensor, values };
}

/**
 * Weight scales large enough that every bias fits int32 at scale s_input * s_weight: a tiny
 * weight (scale ~1e-9) under a small input scale would otherwise need a bias beyond 2^31 and be
 * clipped. The weight then uses fewer of its 255 levels, which costs far less than a wrong bias.
 */
function widenForInt32Bias(scales: readonly number[], bias: Float32Array, inputScale: number): number[] {
  return scales.map((scale, c) => {
    let largest = 0;
    bias.forEach((b, i) => {
      if (scales.length === 1 || i === c) largest = Math.max(largest, Math.abs(b));
    });
    let widened = scale;
    if (largest / Math.fround(widened * inputScale) <= INT32_MAX) return widened;
    widened = Math.fround(largest / (inputScale * INT32_MAX));
    // float32 rounding of the product can land just below what is needed: step up until it fits.
    while (largest / Math.fround(widened * inputScale) > INT32_MAX) widened = Math.fround(widened * (1 + 2 ** -22));
    return widened;
  });
}

function clampInt32(x: number): number {
  return Math.max(-INT32_MAX - 1, Math.min(INT32_MAX, x));
}

/** An integer initializer with its scale and zero-point initializers. */
function addQuantizedInitializers(
  graph: OnnxGraph,
  base: string,
  values: Int8Array | Int32Array,
  dims: readonly number[],
  scales: readonly number[],
  axis: number | undefined,
  dataType: DataType,
): StoredWeight {
  const quantized = graph.uniqueName(`${base}_quantized`);
  const scale = graph.uniqueName(`${base}_scale`);
  const zeroPoint = graph.uniqueName(`${base}_zero_point`);
  const scaleDims = axis === undefined ? [] : [scales.length];
  graph.setInitializer(arrayToTensor(quantized, values, dims, dataType));
  graph.setInitializer(arrayToTensor(scale, Float32Array.from(scales), scaleDims));
  const zeros = dataType === DataType.INT32 ? new Int32Array(scales.length) : new Int8Array(scales.length);
  graph.setInitializer(arrayToTensor(zeroPoint, axis === undefined ? zeros.subarray(0, 1) : zeros, scaleDims, dataType));
  return { quantized, scale, zeroPoint };
}

/** A DequantizeLinear of stored integers right before `reader` (one per reader, as ORT's fusion wants); its output name. */
function addDequantize(graph: OnnxGraph, reader: NodeProto, base: string, stored: StoredWeight, axis: number | undefined): string {
  const output = graph.uniqueName(`${base}_dequantized`);
  graph.insertNodeBefore(
    reader,
    makeNode(
      'DequantizeLinear',
      [stored.quantized, stored.scale, stored.zeroPoint],
      [output],
      axis === undefined ? {} : { axis },
      graph.uniqueName(`${base}_DequantizeLinear`),
    ),
  );
  return output;
}

function removeIfUnused(graph: OnnxGraph, name: string): void {
  if (graph.consumersOf(name).length === 0 && !graph.isGraphOutput(name)) graph.removeInitializer(name);
}
