import { ModelFormatError } from '@open-autoglm/core';
import { getIntAttribute } from '../attributes.js';
import { makeNode, type NodeAttributes, type OnnxGraph } from '../OnnxGraph.js';
import type { OnnxModel } from '../OnnxModel.js';
import { DataType, type NodeProto, type TensorProto } from '../proto.js';
import { arrayToTensor, tensorDims, tensorToArray } from '../tensor.js';

/** The integer types a fake-quantized weight can have, with their ranges. */
const WEIGHT_RANGES: ReadonlyMap<DataType, readonly [number, number]> = new Map([
  [DataType.INT8, [-128, 127]],
  [DataType.UINT8, [0, 255]],
]);
const INT32_RANGE: readonly [number, number] = [-(2 ** 31), 2 ** 31 - 1];

/** How one group of DequantizeLinear nodes read their integer initializer. */
interface QuantizationOf {
  /** The integer initializer's name (restored under it on export when the name is free). */
  readonly quantized: string;
  readonly dataType: DataType;
  readonly scale: string;
  /** The zero point initializer; for a weight always set (QuantizeLinear needs it to produce the integer type). */
  readonly zeroPoint: string | undefined;
  /** The channel axis (normalized to >= 0) when the scale is per channel. */
  readonly axis: number | undefined;
}

/** An int8/uint8 weight turned into a trainable float behind one QuantizeLinear. */
export interface FakeQuantizedWeight extends QuantizationOf {
  readonly float: string;
  /** The QuantizeLinear node, whose output every DequantizeLinear of the weight reads (tied weights stay tied). */
  readonly quantizeNode: string;
  /** True when the zero point initializer was added for the QuantizeLinear (removed again on export). */
  readonly addedZeroPoint: boolean;
}

/** An int32 bias turned into a float initializer read directly by the nodes its DequantizeLinear fed. */
export interface FloatBias extends QuantizationOf {
  readonly float: string;
  /** The removed DequantizeLinear nodes (name, output, the nodes reading it), rebuilt on export. */
  readonly dequantizeNodes: readonly { readonly name: string; readonly output: string; readonly readers: readonly string[] }[];
}

/** What `unfreezeQuantizedWeights` changed, to undo it on the trained model with `refreezeQuantizedWeights`. */
export interface QuantizedWeights {
  readonly weights: readonly FakeQuantizedWeight[];
  readonly biases: readonly FloatBias[];
}

/**
 * Makes a real QDQ model (int8/uint8 weights and int32 biases read through DequantizeLinear, as
 * static quantization writes them) trainable, in place. DequantizeLinear nodes reading one integer
 * initializer with the same scale, zero point and axis form a group (a tied weight is one
 * parameter): a weight group becomes the float initializer of its dequantized values behind one
 * QuantizeLinear with the same scale and zero point, which every DequantizeLinear of the group
 * reads (fake quantization; its gradient is straight-through inside the range); a bias group
 * becomes a float initializer read directly by the nodes its DequantizeLinear nodes fed. The
 * forward pass is unchanged: quantizing a dequantized value gives it back. An integer
 * initializer is removed once nothing reads it any more. Returns what it changed, for
 * `refreezeQuantizedWeights`.
 */
export function unfreezeQuantizedWeights(model: OnnxModel): QuantizedWeights {
  const graph = model.graph;
  const groups = new Map<string, { quantization: QuantizationOf; readers: NodeProto[] }>();
  for (const node of graph.nodes) {
    const quantization = quantizationOf(graph, node);
    if (quantization === undefined) continue;
    const key = JSON.stringify([quantization.quantized, quantization.scale, quantization.zeroPoint ?? '', quantization.axis ?? null]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { quantization, readers: [node] });
    else group.readers.push(node);
  }
  const weights: FakeQuantizedWeight[] = [];
  const biases: FloatBias[] = [];
  for (const { quantization, readers } of groups.values()) {
    const first = readers[0] as NodeProto;
    const stored = graph.getInitializer(quantization.quantized) as TensorProto;
    const dims = tensorDims(stored);
    const float = graph.uniqueName(`${quantization.quantized}.float`);
    graph.setInitializer(arrayToTensor(float, dequantize(graph, quantization, stored), dims));
    if (quantization.dataType === DataType.INT32) {
      const dequantizeNodes = readers.map((reader) => {
        const output = reader.output[0] as string;
        return { name: reader.name, output, readers: graph.consumersOf(output).map((n) => n.name) };
      });
      for (const reader of readers) {
        graph.removeNode(reader);
        graph.replaceUses(reader.output[0] as string, float);
      }
      biases.push({ ...quantization, float, dequantizeNodes });
    } else {
      // QuantizeLinear's output type is its zero point's (uint8 without one), so an int8 weight needs one.
      let zeroPoint = quantization.zeroPoint;
      const addedZeroPoint = zeroPoint === undefined;
      if (zeroPoint === undefined) {
        zeroPoint = graph.uniqueName(`${quantization.quantized}.zero_point`);
        graph.setInitializer(arrayToTensor(zeroPoint, quantization.dataType === DataType.INT8 ? new Int8Array(1) : new Uint8Array(1), []));
      }
      const quantizeNode = graph.uniqueName(`${first.name || quantization.quantized}/fake_quantize`);
      const fakeQuantized = graph.uniqueName(`${quantization.quantized}.fake_quantized`);
      const attributes: NodeAttributes = quantization.axis === undefined ? {} : { axis: quantization.axis };
      graph.insertNodeBefore(first, makeNode('QuantizeLinear', [float, quantization.scale, zeroPoint], [fakeQuantized], attributes, quantizeNode));
      for (const reader of readers) graph.setNodeInput(reader, 0, fakeQuantized);
      weights.push({ ...quantization, zeroPoint, float, quantizeNode, addedZeroPoint });
    }
  }
  for (const name of new Set([...weights, ...biases].map((w) => w.quantized))) {
    if (graph.consumersOf(name).length === 0) graph.removeInitializer(name);
  }
  return { weights, biases };
}

/**
 * The inverse of `unfreezeQuantizedWeights` on the (trained) model it returned, in place: every
 * float weight is quantized with the scale and zero point the graph holds now (round half to even
 * like ONNX QuantizeLinear, clamped to the type's range) into an integer initializer that its
 * DequantizeLinear nodes read again, and every float bias into int32 behind its DequantizeLinear
 * nodes, rebuilt under their names. Integer initializers get their old names back when free.
 * Throws ModelFormatError, before changing anything, when training lost a float parameter, a
 * QuantizeLinear or a scale.
 */
export function refreezeQuantizedWeights(model: OnnxModel, record: QuantizedWeights): void {
  const graph = model.graph;
  checkRefreezable(graph, record, model.source);
  for (const weight of record.weights) {
    const quantizeNode = graph.nodes.find((n) => n.name === weight.quantizeNode) as NodeProto;
    const name = restoredName(graph, weight.quantized);
    graph.setInitializer(quantize(graph, weight, weight.float, name));
    graph.removeNode(quantizeNode);
    graph.replaceUses(quantizeNode.output[0] as string, name);
    graph.removeInitializer(weight.float);
    if (weight.addedZeroPoint && graph.consumersOf(weight.zeroPoint as string).length === 0) graph.removeInitializer(weight.zeroPoint as string);
  }
  for (const bias of record.biases) {
    const name = restoredName(graph, bias.quantized);
    graph.setInitializer(quantize(graph, bias, bias.float, name));
    const inputs = [name, bias.scale, ...(bias.zeroPoint === undefined ? [] : [bias.zeroPoint])];
    const attributes: NodeAttributes = bias.axis === undefined ? {} : { axis: bias.axis };
    const rebuilt = new Map<string, string>();
    for (const reader of [...graph.consumersOf(bias.float)]) {
      // The DequantizeLinear that fed this node before; a reader training added gets one of its own.
      const original = bias.dequantizeNodes.find((d) => reader.name !== '' && d.readers.includes(reader.name));
      const key = original?.name ?? `new:${reader.name}:${graph.indexOfNode(reader)}`;
      let output = rebuilt.get(key);
      if (output === undefined) {
        output = original?.output ?? graph.uniqueName(`${name}_dequantized`);
        const nodeName = original?.name ?? graph.uniqueName(`${name}_DequantizeLinear`);
        graph.insertNodeBefore(reader, makeNode('DequantizeLinear', inputs, [output], attributes, nodeName));
        rebuilt.set(key, output);
      }
      reader.input.forEach((input, slot) => {
        if (input === bias.float) graph.setNodeInput(reader, slot, output);
      });
    }
    graph.removeInitializer(bias.float);
  }
  graph.sortTopologically();
}

/** The group a DequantizeLinear belongs to, when it reads an int8/uint8/int32 initializer with initializer parameters. */
function quantizationOf(graph: OnnxGraph, node: NodeProto): QuantizationOf | undefined {
  if (node.opType !== 'DequantizeLinear') return undefined;
  const [input = '', scale = '', zeroPointInput = ''] = node.input;
  const stored = graph.getInitializer(input);
  const scales = graph.getInitializer(scale);
  if (stored === undefined || scales === undefined) return undefined;
  if (stored.dataType !== DataType.INT32 && !WEIGHT_RANGES.has(stored.dataType)) return undefined;
  const zeroPoint = zeroPointInput === '' ? undefined : zeroPointInput;
  if (zeroPoint !== undefined && graph.getInitializer(zeroPoint) === undefined) return undefined;
  let axis: number | undefined;
  if (scales.dims.length > 0 && tensorToArray(scales).length > 1) {
    const attribute = getIntAttribute(node, 'axis', 1);
    axis = attribute < 0 ? attribute + stored.dims.length : attribute;
  }
  return { quantized: stored.name, dataType: stored.dataType, scale, zeroPoint, axis };
}

/** Every float parameter, QuantizeLinear, scale and zero point the export needs, or one error naming all that is missing. */
function checkRefreezable(graph: OnnxGraph, record: QuantizedWeights, source: string | undefined): void {
  const lost: string[] = [];
  const names = new Set(graph.nodes.map((n) => n.name));
  for (const entry of [...record.weights, ...record.biases]) {
    if (graph.getInitializer(entry.float) === undefined) lost.push(`the float parameter "${entry.float}"`);
    if (graph.getInitializer(entry.scale) === undefined) lost.push(`the scale "${entry.scale}" of "${entry.quantized}"`);
    if (entry.zeroPoint !== undefined && graph.getInitializer(entry.zeroPoint) === undefined) {
      lost.push(`the zero point "${entry.zeroPoint}" of "${entry.quantized}"`);
    }
  }
  for (const weight of record.weights) {
    if (!names.has(weight.quantizeNode)) lost.push(`the QuantizeLinear node "${weight.quantizeNode}"`);
  }
  if (lost.length > 0) {
    throw new ModelFormatError(
      `The trained model${source === undefined ? '' : ` "${source}"`} lost ${lost.join(', ')}, so it cannot be exported as real QDQ. ` +
        'Refreeze the model that training returned, without removing its fake quantization nodes or their initializers.',
      { file: source },
    );
  }
}

/** The name an integer initializer gets back: its own, unless something else took it meanwhile. */
function restoredName(graph: OnnxGraph, name: string): string {
  return graph.getInitializer(name) === undefined && graph.producerOf(name) === undefined ? name : graph.uniqueName(name);
}

/** Per-element channel lookup along the quantization axis (0 for a per-tensor scale). */
function channelIndexer(dims: readonly number[], axis: number | undefined, channels: number): (index: number) => number {
  if (axis === undefined || channels === 1) return () => 0;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return (index) => Math.floor(index / inner) % channels;
}

/** x = (q - zero point) * scale, per channel along the axis. */
function dequantize(graph: OnnxGraph, quantization: QuantizationOf, stored: TensorProto): Float32Array {
  const q = tensorToArray(stored);
  const scales = tensorToArray(graph.getInitializer(quantization.scale) as TensorProto) as Float32Array;
  const zeroPoints = quantization.zeroPoint === undefined ? undefined : tensorToArray(graph.getInitializer(quantization.zeroPoint) as TensorProto);
  const channelOf = channelIndexer(tensorDims(stored), quantization.axis, scales.length);
  const values = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const channel = channelOf(i);
    const zero = zeroPoints === undefined ? 0 : Number(zeroPoints[zeroPoints.length === 1 ? 0 : channel]);
    values[i] = (Number(q[i]) - zero) * (scales[channel] as number);
  }
  return values;
}

/**
 * q = clamp(round_half_to_even(x / scale) + zero point) as ONNX QuantizeLinear computes it (the
 * division in float32), with the scale and zero point the graph holds.
 */
function quantize(graph: OnnxGraph, quantization: QuantizationOf, float: string, name: string): TensorProto {
  const trained = graph.getInitializer(float) as TensorProto;
  const values = tensorToArray(trained) as Float32Array;
  const dims = tensorDims(trained);
  const scales = tensorToArray(graph.getInitializer(quantization.scale) as TensorProto) as Float32Array;
  const zeroPoints = quantization.zeroPoint === undefined ? undefined : tensorToArray(graph.getInitializer(quantization.zeroPoint) as TensorProto);
  const [low, high] = WEIGHT_RANGES.get(quantization.dataType) ?? INT32_RANGE;
  const channelOf = channelIndexer(dims, quantization.axis, scales.length);
  const quantized =
    quantization.dataType === DataType.INT8 ? new Int8Array(values.length) : quantization.dataType === DataType.UINT8 ? new Uint8Array(values.length) : new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const channel = channelOf(i);
    const zero = zeroPoints === undefined ? 0 : Number(zeroPoints[zeroPoints.length === 1 ? 0 : channel]);
    const q = roundHalfToEven(Math.fround((values[i] as number) / (scales[channel] as number))) + zero;
    quantized[i] = Math.min(high, Math.max(low, q));
  }
  return arrayToTensor(name, quantized, dims);
}

/** Rounds to the nearest integer, ties to even (ONNX QuantizeLinear's rounding). */
function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const difference = x - floor;
  if (difference !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}
