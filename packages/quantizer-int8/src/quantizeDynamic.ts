import {
  arrayToTensor,
  DataType,
  getFloatAttribute,
  getIntAttribute,
  makeNode,
  type NodeProto,
  type OnnxGraph,
  type OnnxModel,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import { checkQuantizable } from './checkQuantizable.js';
import type { FloatNode } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import { integerRange, quantizeValue, symmetricWeightScale } from './quantizationParameters.js';

export interface DynamicQuantizationOptions {
  /** One scale per output column of each weight (default true) or one per weight. */
  perChannel?: boolean;
  /** Op types (`Gemm`) or node names to keep in float. */
  exclude?: readonly string[];
}

export interface DynamicQuantizationResult {
  readonly model: OnnxModel;
  readonly quantizedNodes: readonly string[];
  readonly floatNodes: readonly FloatNode[];
}

/**
 * Dynamic INT8 quantization for MatMul/Gemm-heavy models (transformers): every MatMul and Gemm
 * with a constant weight gets an int8 symmetric weight, and its input is quantized to uint8 at
 * run time (DynamicQuantizeLinear), so no calibration data is needed. The pattern
 * DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(a_scale * b_scale) [-> Add bias] is
 * what onnxruntime fuses into DynamicQuantizeMatMul / MatMulIntegerToFloat. MatMuls between two
 * activations (attention scores) stay float.
 */
export function quantizeDynamic(model: OnnxModel, options: DynamicQuantizationOptions = {}): DynamicQuantizationResult {
  checkQuantizable(model);
  const prepared = prepareForQuantization(model);
  const graph = prepared.graph;
  const exclude = new Set(options.exclude ?? []);
  const quantizedNodes: string[] = [];
  const floatNodes: FloatNode[] = [];
  for (const node of graph.topologicalOrder()) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    if (exclude.has(node.name) || exclude.has(node.opType)) {
      floatNodes.push({ node: node.name, opType: node.opType, reason: 'excluded by the caller' });
      continue;
    }
    const reason = unsupportedReason(graph, node);
    if (reason !== undefined) {
      floatNodes.push({ node: node.name, opType: node.opType, reason });
      continue;
    }
    replaceWithMatMulInteger(graph, node, options.perChannel ?? true);
    quantizedNodes.push(node.name);
  }
  return { model: prepared, quantizedNodes, floatNodes };
}

function unsupportedReason(graph: OnnxGraph, node: NodeProto): string | undefined {
  const weight = graph.constantValue(node.input[1] ?? '');
  if (weight === undefined) return 'its second input is an activation (attention scores), not a weight';
  if (weight.dataType !== DataType.FLOAT || weight.dims.length !== 2) return 'its weight is not a 2-D float32 matrix';
  if (node.opType === 'Gemm') {
    if (getIntAttribute(node, 'transA', 0) !== 0) return 'Gemm with transA has no integer kernel here';
    if (getFloatAttribute(node, 'alpha', 1) !== 1 || getFloatAttribute(node, 'beta', 1) !== 1) return 'Gemm alpha/beta other than 1';
  }
  return undefined;
}

/** Replaces a MatMul/Gemm by the dynamic-quantization pattern onnxruntime fuses. */
function replaceWithMatMulInteger(graph: OnnxGraph, node: NodeProto, perChannel: boolean): void {
  const weightName = node.input[1] as string;
  const weight = graph.constantValue(weightName);
  if (weight === undefined) return;
  const [rows, columns] = tensorDims(weight) as [number, number];
  const values = tensorToArray(weight) as Float32Array;
  // MatMulInteger takes B as [K, N]; Gemm with transB stores [N, K].
  const transposed = node.opType === 'Gemm' && getIntAttribute(node, 'transB', 0) === 1;
  const k = transposed ? columns : rows;
  const n = transposed ? rows : columns;
  const at = (i: number, j: number): number => (transposed ? (values[j * columns + i] as number) : (values[i * columns + j] as number));
  const absMax = new Float64Array(perChannel ? n : 1);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      const c = perChannel ? j : 0;
      absMax[c] = Math.max(absMax[c] as number, Math.abs(at(i, j)));
    }
  }
  const scales = Float32Array.from(absMax, (m) => symmetricWeightScale(m));
  const { qmin, qmax } = integerRange('int8', true);
  const quantized = new Int8Array(k * n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      quantized[i * n + j] = quantizeValue(at(i, j), { scale: scales[perChannel ? j : 0] as number, zeroPoint: 0 }, qmin, qmax);
    }
  }
  const base = node.name;
  const name = (suffix: string): string => graph.uniqueName(`${base}_${suffix}`);
  const weightQ = name('weight_quantized');
  const weightScale = name('weight_scale');
  const weightZero = name('weight_zero_point');
  const scaleDims = perChannel ? [n] : [];
  graph.setInitializer(arrayToTensor(weightQ, quantized, [k, n]));
  graph.setInitializer(arrayToTensor(weightScale, scales, scaleDims));
  graph.setInitializer(arrayToTensor(weightZero, new Int8Array(perChannel ? n : 1), scaleDims));

  const input = node.input[0] as string;
  const inputQ = name('input_quantized');
  const inputScale = name('input_scale');
  const inputZero = name('input_zero_point');
  const product = name('output_integer');
  const productFloat = name('output_float');
  const combinedScale = name('output_scale');
  const output = node.output[0] as string;
  const bias = node.opType === 'Gemm' ? node.input[2] : undefined;
  const scaled = bias !== undefined && bias !== '' ? name('output_unbiased') : output;
  const added: NodeProto[] = [
    makeNode('DynamicQuantizeLinear', [input], [inputQ, inputScale, inputZero], {}, name('DynamicQuantizeLinear')),
    makeNode('MatMulInteger', [inputQ, weightQ, inputZero, weightZero], [product], {}, name('MatMulInteger')),
    makeNode('Cast', [product], [productFloat], { to: DataType.FLOAT }, name('Cast')),
    makeNode('Mul', [inputScale, weightScale], [combinedScale], {}, name('ScaleMul')),
    makeNode('Mul', [productFloat, combinedScale], [scaled], {}, name('Mul')),
  ];
  if (scaled !== output) added.push(makeNode('Add', [scaled, bias as string], [output], {}, name('BiasAdd')));
  for (const extra of added) graph.insertNodeBefore(node, extra);
  graph.removeNode(node);
  if (graph.consumersOf(weightName).length === 0 && !graph.isGraphOutput(weightName)) graph.removeInitializer(weightName);
}
