import { ConfigError } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  makeNode,
  type NodeProto,
  type OnnxGraph,
  type OnnxModel,
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
  const weights = plan.weights.map((weight) => quantizeWeight(graph, weight, parameters));
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

function quantizeWeight(
  graph: OnnxGraph,
  plan: WeightPlan,
  activations: ReadonlyMap<string, QuantizedActivation>,
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
  const scales = Array.from(absMax, (m) => symmetricWeightScale(m));
  const { qmin, qmax } = integerRange('int8', true);
  const quantized = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    quantized[i] = quantizeValue(values[i] as number, { scale: scales[channelOf(i)] as number, zeroPoint: 0 }, qmin, qmax);
  }
  const base = node.name === '' ? weightName : `${node.name}.weight`;
  const dequantized = addDequantizedConstant(graph, node, base, quantized, dims, scales, axis, DataType.INT8);
  graph.setNodeInput(node, plan.slot, dequantized);
  removeIfUnused(graph, weightName);

  let bias = false;
  const input = activations.get(node.input[0] ?? '');
  if (plan.biasSlot !== undefined && input !== undefined) {
    const biasName = node.input[plan.biasSlot] as string;
    const biasTensor = graph.constantValue(biasName);
    if (biasTensor !== undefined && biasTensor.dataType === DataType.FLOAT) {
      const biasValues = tensorToArray(biasTensor) as Float32Array;
      const biasDims = tensorDims(biasTensor);
      const perChannel = scales.length > 1;
      if (biasDims.length === 1 && (!perChannel || biasValues.length === scales.length)) {
        const biasScales = scales.map((s) => Math.fround(s * input.scale));
        const biasQuantized = new Int32Array(biasValues.length);
        for (let i = 0; i < biasValues.length; i++) {
          const s = biasScales[perChannel ? i : 0] as number;
          biasQuantized[i] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, roundHalfToEven((biasValues[i] as number) / s)));
        }
        const biasBase = node.name === '' ? biasName : `${node.name}.bias`;
        const biasOut = addDequantizedConstant(
          graph, node, biasBase, biasQuantized, biasDims, biasScales, perChannel ? 0 : undefined, DataType.INT32,
        );
        graph.setNodeInput(node, plan.biasSlot, biasOut);
        removeIfUnused(graph, biasName);
        bias = true;
      }
    }
  }
  return { node: node.name, weight: weightName, axis, scales, bias };
}

/** An integer initializer with its scales, zero points and a DequantizeLinear before `reader`. */
function addDequantizedConstant(
  graph: OnnxGraph,
  reader: NodeProto,
  base: string,
  values: Int8Array | Int32Array,
  dims: readonly number[],
  scales: readonly number[],
  axis: number | undefined,
  dataType: DataType,
): string {
  const quantizedName = graph.uniqueName(`${base}_quantized`);
  const scaleName = graph.uniqueName(`${base}_scale`);
  const zeroPointName = graph.uniqueName(`${base}_zero_point`);
  const scaleDims = axis === undefined ? [] : [scales.length];
  graph.setInitializer(arrayToTensor(quantizedName, values, dims, dataType));
  graph.setInitializer(arrayToTensor(scaleName, Float32Array.from(scales), scaleDims));
  const zeros = dataType === DataType.INT32 ? new Int32Array(scales.length) : new Int8Array(scales.length);
  graph.setInitializer(arrayToTensor(zeroPointName, axis === undefined ? zeros.subarray(0, 1) : zeros, scaleDims, dataType));
  const output = graph.uniqueName(`${base}_dequantized`);
  graph.insertNodeBefore(
    reader,
    makeNode(
      'DequantizeLinear',
      [quantizedName, scaleName, zeroPointName],
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
