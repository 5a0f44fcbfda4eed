import { ConfigError } from '@open-autoglm/core';
import { arrayToTensor, DataType, getIntAttribute, makeNode, type OnnxModel, tensorDims, tensorToArray } from '@open-autoglm/onnx';

/** An integer weight of a QDQ model turned into a trainable float behind QuantizeLinear -> DequantizeLinear. */
interface UnfrozenWeight {
  /** The integer initializer (restored under this name on export). */
  readonly quantized: string;
  readonly float: string;
  readonly quantizeNode: string;
  readonly dequantizeOutput: string;
  readonly scale: string;
  readonly zeroPoint: string;
  readonly dataType: DataType;
  readonly axis: number;
}

/** An int32 bias of a QDQ model turned into a float initializer read directly by its consumers. */
interface UnfrozenBias {
  readonly quantized: string;
  readonly float: string;
  /** The removed DequantizeLinear, rebuilt on export. */
  readonly dequantize: { readonly name: string; readonly inputs: readonly string[]; readonly output: string; readonly axis: number };
}

/** What `unfreezeQuantizedWeights` changed, to undo it on the trained model. */
export interface QuantizedWeights {
  readonly weights: readonly UnfrozenWeight[];
  readonly biases: readonly UnfrozenBias[];
}

const RANGES: ReadonlyMap<DataType, readonly [number, number]> = new Map([
  [DataType.INT8, [-128, 127]],
  [DataType.UINT8, [0, 255]],
]);

/**
 * Makes a real QDQ model (integer weights read through DequantizeLinear, as static quantization
 * writes them) trainable in place: every int8/uint8 weight becomes the float initializer of its
 * dequantized values behind a QuantizeLinear with the same scale and zero point (fake
 * quantization, whose gradient is straight-through), and every int32 bias becomes a float
 * initializer. The forward pass is unchanged: re-quantizing a dequantized value gives it back.
 * `refreezeQuantizedWeights` turns the trained model back into real QDQ with the same scales.
 */
export function unfreezeQuantizedWeights(model: OnnxModel): QuantizedWeights {
  const graph = model.graph;
  const weights: UnfrozenWeight[] = [];
  const biases: UnfrozenBias[] = [];
  for (const node of [...graph.nodes]) {
    if (node.opType !== 'DequantizeLinear') continue;
    const [input, scaleName, zeroPointName] = node.input;
    const quantized = input === undefined ? undefined : graph.getInitializer(input);
    const scale = scaleName === undefined ? undefined : graph.getInitializer(scaleName);
    if (quantized === undefined || scale === undefined || (zeroPointName !== undefined && zeroPointName !== '' && graph.getInitializer(zeroPointName) === undefined)) continue;
    // Only int8/uint8 weights and int32 biases are unfrozen; other types stay as they are.
    if (quantized.dataType !== DataType.INT32 && !RANGES.has(quantized.dataType)) continue;
    const dims = tensorDims(quantized);
    const axisAttribute = getIntAttribute(node, 'axis', 1);
    const axis = axisAttribute < 0 ? axisAttribute + dims.length : axisAttribute;
    const zeroPoint = zeroPointName === undefined || zeroPointName === '' ? undefined : graph.getInitializer(zeroPointName);
    const values = dequantize(tensorToArray(quantized), dims, tensorToArray(scale) as Float32Array, zeroPoint === undefined ? undefined : tensorToArray(zeroPoint), axis);
    const float = graph.uniqueName(`${quantized.name}.float`);
    graph.setInitializer(arrayToTensor(float, values, dims));
    const output = node.output[0] as string;
    if (quantized.dataType === DataType.INT32) {
      biases.push({ quantized: quantized.name, float, dequantize: { name: node.name, inputs: [...node.input], output, axis } });
      graph.removeNode(node);
      graph.replaceUses(output, float);
      graph.removeInitializer(quantized.name);
      continue;
    }
    // QuantizeLinear needs the zero point to produce the weight's integer type (it defaults to uint8).
    let zeroPointInput = zeroPointName;
    if (zeroPointInput === undefined || zeroPointInput === '') {
      zeroPointInput = graph.uniqueName(`${quantized.name}.zero_point`);
      graph.setInitializer(arrayToTensor(zeroPointInput, quantized.dataType === DataType.INT8 ? new Int8Array(1) : new Uint8Array(1), []));
    }
    const quantizeNode = graph.uniqueName(`${node.name || quantized.name}/fake_quantize`);
    const fakeQuantized = graph.uniqueName(`${quantized.name}.fake_quantized`);
    graph.insertNodeBefore(node, makeNode('QuantizeLinear', [float, scaleName as string, zeroPointInput], [fakeQuantized], dims.length > 0 && scale.dims.length === 1 ? { axis } : {}, quantizeNode));
    graph.setNodeInput(node, 0, fakeQuantized);
    if (node.input.length < 3) node.input.push(zeroPointInput);
    else graph.setNodeInput(node, 2, zeroPointInput);
    graph.removeInitializer(quantized.name);
    weights.push({ quantized: quantized.name, float, quantizeNode, dequantizeOutput: output, scale: scaleName as string, zeroPoint: zeroPointInput, dataType: quantized.dataType, axis });
  }
  return { weights, biases };
}

/**
 * The inverse of `unfreezeQuantizedWeights` on a (trained) copy: every float weight is quantized
 * with its scale and zero point back into its integer initializer, every float bias into int32
 * with its DequantizeLinear restored. ConfigError when training lost a fake-quantized weight.
 */
export function refreezeQuantizedWeights(model: OnnxModel, record: QuantizedWeights): void {
  const graph = model.graph;
  for (const weight of record.weights) {
    const float = graph.getInitializer(weight.float);
    const quantize = graph.nodes.find((n) => n.name === weight.quantizeNode);
    const dequantize = graph.nodes.find((n) => n.opType === 'DequantizeLinear' && n.output[0] === weight.dequantizeOutput);
    if (float === undefined || quantize === undefined || dequantize === undefined) {
      throw new ConfigError(`The trained model lost the fake quantization of "${weight.quantized}", so it cannot be exported as QDQ.`);
    }
    const dims = tensorDims(float);
    const scale = tensorToArray(graph.getInitializer(weight.scale)!) as Float32Array;
    const zeroPoint = tensorToArray(graph.getInitializer(weight.zeroPoint)!);
    const [low, high] = RANGES.get(weight.dataType) as readonly [number, number];
    const values = tensorToArray(float) as Float32Array;
    const quantized = weight.dataType === DataType.INT8 ? new Int8Array(values.length) : new Uint8Array(values.length);
    forEachChannel(values.length, dims, weight.axis, scale.length, (index, channel) => {
      const q = Math.round((values[index] as number) / (scale[channel] as number)) + Number(zeroPoint[zeroPoint.length === 1 ? 0 : channel]);
      quantized[index] = Math.min(high, Math.max(low, q));
    });
    graph.setInitializer(arrayToTensor(weight.quantized, quantized, dims));
    graph.setNodeInput(dequantize, 0, weight.quantized);
    graph.removeNode(quantize);
    graph.removeInitializer(weight.float);
  }
  for (const bias of record.biases) {
    const float = graph.getInitializer(bias.float);
    if (float === undefined) throw new ConfigError(`The trained model lost the bias "${bias.quantized}", so it cannot be exported as QDQ.`);
    const dims = tensorDims(float);
    const scale = tensorToArray(graph.getInitializer(bias.dequantize.inputs[1] as string)!) as Float32Array;
    const values = tensorToArray(float) as Float32Array;
    const quantized = new Int32Array(values.length);
    forEachChannel(values.length, dims, bias.dequantize.axis, scale.length, (index, channel) => {
      quantized[index] = Math.round((values[index] as number) / (scale[channel] as number));
    });
    graph.setInitializer(arrayToTensor(bias.quantized, quantized, dims));
    graph.replaceUses(bias.float, bias.dequantize.output);
    const readers = graph.consumersOf(bias.dequantize.output);
    const dequantize = makeNode('DequantizeLinear', bias.dequantize.inputs, [bias.dequantize.output], dims.length > 0 && scale.length > 1 ? { axis: bias.dequantize.axis } : {}, bias.dequantize.name);
    const firstReader = readers[0];
    if (firstReader === undefined) graph.addNode(dequantize);
    else graph.insertNodeBefore(firstReader, dequantize);
    graph.removeInitializer(bias.float);
  }
  graph.sortTopologically();
}

function dequantize(
  quantized: ArrayLike<number | bigint>,
  dims: readonly number[],
  scale: Float32Array,
  zeroPoint: ArrayLike<number | bigint> | undefined,
  axis: number,
): Float32Array {
  const values = new Float32Array(quantized.length);
  forEachChannel(quantized.length, dims, axis, scale.length, (index, channel) => {
    const zero = zeroPoint === undefined ? 0 : Number(zeroPoint[zeroPoint.length === 1 ? 0 : channel]);
    values[index] = (Number(quantized[index]) - zero) * (scale[channel] as number);
  });
  return values;
}

/** Calls `visit(index, channel)` for every element, `channel` being its index along `axis` (0 for a per-tensor scale). */
function forEachChannel(length: number, dims: readonly number[], axis: number, channels: number, visit: (index: number, channel: number) => void): void {
  const inner = channels === 1 ? length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let index = 0; index < length; index++) visit(index, channels === 1 ? 0 : Math.floor(index / inner) % channels);
}
