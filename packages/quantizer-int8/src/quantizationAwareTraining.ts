import { ConfigError } from '@open-autoglm/core';
import {
  arrayToTensor,
  buildTrainingStep,
  DataType,
  getIntAttribute,
  makeNode,
  type NodeProto,
  type OnnxGraph,
  type OnnxModel,
  type TensorProto,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import { type Dataset, type EpochSummary, type RuntimeTarget, Trainer } from '@open-autoglm/runtime';
import { integerRange, quantizeValue, roundHalfToEven } from './quantizationParameters.js';
import { quantizeStatic, type StaticQuantizationOptions, type StaticQuantizationResult } from './quantizeStatic.js';

export interface QuantizationAwareTrainingOptions extends StaticQuantizationOptions {
  /** Labelled training data for the fine-tuning. */
  train: Dataset;
  /** Evaluated (top-1) after every epoch when given. */
  validation?: Dataset;
  /** Default 1. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** AdamW learning rate; default 1e-4 (a fine-tuning rate: the weights start trained). */
  learningRate?: number;
  /** Seeds the shuffling; default 0. */
  seed?: number;
  /** Where training runs; default one CPU thread. */
  trainingTarget?: RuntimeTarget;
}

export interface QuantizationAwareTrainingResult {
  /** The fine-tuned model as real QDQ (int8 weights, int32 biases), like `quantizeStatic`'s. */
  readonly model: OnnxModel;
  /** The post-training quantization the fine-tuning started from. */
  readonly initial: StaticQuantizationResult;
  readonly history: readonly EpochSummary[];
}

/**
 * An int8 weight turned back into a trainable float behind one QuantizeLinear, whose output every
 * DequantizeLinear of the weight reads (tied weights stay tied).
 */
interface FakeQuantWeight {
  readonly float: string;
  readonly quantize: string;
  readonly scale: string;
  readonly zeroPoint: string;
  readonly axis: number | undefined;
}

/** An int32 bias turned back into a trainable float read directly by its nodes. */
interface FloatBias {
  readonly float: string;
  /** Its DequantizeLinear's scale (s_input * s_weight), kept to requantize after training. */
  readonly scale: string;
}

/**
 * Quantization-aware training: static post-training quantization first, then every int8 weight
 * becomes a float parameter behind QuantizeLinear -> DequantizeLinear (fake quantization, whose
 * gradient the autodiff passes straight through inside the clamp range) and every int32 bias a
 * float parameter; the model is fine-tuned with cross-entropy on labelled data (AdamW) on the
 * training engine, and exported back as real QDQ with the same scales and zero points.
 */
export async function quantizationAwareTraining(
  model: OnnxModel,
  calibration: Dataset,
  options: QuantizationAwareTrainingOptions,
): Promise<QuantizationAwareTrainingResult> {
  if (options.train.labels === undefined) {
    throw new ConfigError('Quantization-aware training fine-tunes on labelled data: give the training set with labels (y).');
  }
  const initial = await quantizeStatic(model, calibration, options);
  const fake = initial.model.clone();
  const { weights, biases } = toFakeQuantization(fake.graph);
  const trainable = [...weights.map((w) => w.float), ...biases.map((b) => b.float)];
  const step = buildTrainingStep(fake, {
    trainable,
    loss: [{ kind: 'crossEntropy' }],
    optimizer: { kind: 'adamw', weightDecay: 0 },
  });
  const trainer = await Trainer.create({
    model: fake,
    step: step.model,
    train: options.train,
    ...(options.validation === undefined ? {} : { validation: options.validation }),
    epochs: options.epochs ?? 1,
    batchSize: options.batchSize ?? 64,
    learningRate: options.learningRate ?? 1e-4,
    seed: options.seed ?? 0,
    ...(options.trainingTarget === undefined ? {} : { target: options.trainingTarget }),
  });
  let result: Awaited<ReturnType<Trainer['train']>>;
  let trained: OnnxModel;
  try {
    result = await trainer.train();
    trained = trainer.exportModel();
  } finally {
    await trainer.release();
  }
  toRealQuantization(trained.graph, weights, biases);
  return { model: trained, initial, history: result.history };
}

/**
 * Rewrites int8 weights and int32 biases of a QDQ graph into trainable float fake quantization.
 * DequantizeLinear nodes reading one integer initializer with the same scale, zero point and
 * axis share one float copy (a tied weight is one parameter); with other parameters they
 * dequantize to other values, so each such group gets a float copy of its own.
 */
function toFakeQuantization(graph: OnnxGraph): { weights: FakeQuantWeight[]; biases: FloatBias[] } {
  const groups = new Map<string, NodeProto[]>();
  for (const node of graph.nodes) {
    if (node.opType !== 'DequantizeLinear') continue;
    const stored = graph.getInitializer(node.input[0] ?? '');
    if (stored === undefined || (stored.dataType !== DataType.INT8 && stored.dataType !== DataType.INT32)) continue;
    const key = JSON.stringify([stored.name, node.input[1], node.input[2], axisOf(graph, node)]);
    groups.set(key, [...(groups.get(key) ?? []), node]);
  }
  const weights: FakeQuantWeight[] = [];
  const biases: FloatBias[] = [];
  const replaced = new Set<string>();
  for (const readers of groups.values()) {
    const first = readers[0] as NodeProto;
    const stored = graph.getInitializer(first.input[0] as string) as TensorProto;
    const scale = first.input[1] as string;
    const zeroPoint = first.input[2] as string;
    const axis = axisOf(graph, first);
    const float = graph.uniqueName(stored.name.replace(/_quantized$/, '_float'));
    graph.setInitializer(arrayToTensor(float, dequantized(graph, stored.name, scale, axis), tensorDims(stored)));
    replaced.add(stored.name);
    if (stored.dataType === DataType.INT8) {
      const fakeQuantized = graph.uniqueName(`${float}_fake_quantized`);
      const quantize = graph.uniqueName(`${float}_QuantizeLinear`);
      graph.insertNodeBefore(first, makeNode('QuantizeLinear', [float, scale, zeroPoint], [fakeQuantized], axis === undefined ? {} : { axis }, quantize));
      for (const reader of readers) graph.setNodeInput(reader, 0, fakeQuantized);
      weights.push({ float, quantize, scale, zeroPoint, axis });
    } else {
      for (const reader of readers) {
        graph.replaceUses(reader.output[0] as string, float);
        graph.removeNode(reader);
      }
      biases.push({ float, scale });
    }
  }
  for (const name of replaced) if (graph.consumersOf(name).length === 0) graph.removeInitializer(name);
  return { weights, biases };
}

/** The inverse of `toFakeQuantization` on the trained graph: int8 weights and int32 biases again. */
function toRealQuantization(graph: OnnxGraph, weights: readonly FakeQuantWeight[], biases: readonly FloatBias[]): void {
  const { qmin, qmax } = integerRange('int8', true);
  for (const weight of weights) {
    const trained = graph.getInitializer(weight.float);
    const quantizeNode = graph.nodes.find((n) => n.name === weight.quantize);
    if (trained === undefined || quantizeNode === undefined) {
      throw new ConfigError(`The trained model lost the fake quantization of "${weight.float}"; it cannot be exported as QDQ.`);
    }
    const values = tensorToArray(trained) as Float32Array;
    const dims = tensorDims(trained);
    const scales = scalesOf(graph, weight.scale);
    const channelOf = channelIndexer(dims, weight.axis, scales.length);
    const quantized = Int8Array.from(values, (v, i) => quantizeValue(v, { scale: scales[channelOf(i)] as number, zeroPoint: 0 }, qmin, qmax));
    const name = graph.uniqueName(weight.float.replace(/_float$/, '_quantized'));
    graph.setInitializer(arrayToTensor(name, quantized, dims));
    graph.replaceUses(quantizeNode.output[0] as string, name);
    graph.removeNode(quantizeNode);
    graph.removeInitializer(weight.float);
  }
  for (const bias of biases) {
    const trained = graph.getInitializer(bias.float);
    const readers = [...graph.consumersOf(bias.float)];
    if (trained === undefined || readers.length === 0) {
      throw new ConfigError(`The trained model lost the bias "${bias.float}"; it cannot be exported as QDQ.`);
    }
    const values = tensorToArray(trained) as Float32Array;
    const scales = scalesOf(graph, bias.scale);
    const quantized = Int32Array.from(values, (v, i) =>
      Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, roundHalfToEven(v / (scales[scales.length > 1 ? i : 0] as number)))),
    );
    const name = graph.uniqueName(bias.float.replace(/_float$/, '_quantized'));
    const zeroPoint = graph.uniqueName(`${name}_zero_point`);
    graph.setInitializer(arrayToTensor(name, quantized, tensorDims(trained)));
    graph.setInitializer(arrayToTensor(zeroPoint, new Int32Array(scales.length), scales.length > 1 ? [scales.length] : []));
    // One DequantizeLinear per reader, as quantizeStatic writes them (ORT fuses each node unit).
    for (const reader of readers) {
      const output = graph.uniqueName(`${name}_dequantized`);
      graph.insertNodeBefore(
        reader,
        makeNode('DequantizeLinear', [name, bias.scale, zeroPoint], [output], scales.length > 1 ? { axis: 0 } : {}, graph.uniqueName(`${name}_DequantizeLinear`)),
      );
      reader.input.forEach((input, slot) => {
        if (input === bias.float) graph.setNodeInput(reader, slot, output);
      });
    }
    graph.removeInitializer(bias.float);
  }
}

/** The scales a DequantizeLinear kept through training (requantizing with anything else would be wrong). */
function scalesOf(graph: OnnxGraph, name: string): Float32Array {
  const scales = graph.getInitializer(name);
  if (scales === undefined) throw new ConfigError(`The trained model lost the quantization scale "${name}"; it cannot be exported as QDQ.`);
  return tensorToArray(scales) as Float32Array;
}

function dequantized(graph: OnnxGraph, stored: string, scale: string, axis: number | undefined): Float32Array {
  const tensor = graph.getInitializer(stored);
  const scales = graph.getInitializer(scale);
  if (tensor === undefined || scales === undefined) return new Float32Array(0);
  const q = tensorToArray(tensor) as Int8Array | Int32Array;
  const s = tensorToArray(scales) as Float32Array;
  const channelOf = channelIndexer(tensorDims(tensor), axis, s.length);
  return Float32Array.from(q, (v, i) => v * (s[channelOf(i)] as number));
}

/** A DequantizeLinear's axis when its scale is per channel (ONNX's default 1 when unset), else undefined. */
function axisOf(graph: OnnxGraph, node: NodeProto): number | undefined {
  const scale = graph.getInitializer(node.input[1] ?? '');
  if (scale === undefined || scale.dims.length === 0) return undefined;
  return getIntAttribute(node, 'axis', 1);
}

/** Flat index -> channel along `axis` (0 for one scale). */
function channelIndexer(dims: readonly number[], axis: number | undefined, channels: number): (i: number) => number {
  if (axis === undefined || channels === 1) return () => 0;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return (i) => Math.floor(i / inner) % channels;
}
