import { arrayToTensor, makeNode, type OnnxModel, tensorDims, tensorToArray } from '@open-autoglm/onnx';
import { collectMinMax, type Dataset } from '@open-autoglm/runtime';

/**
 * A QDQ copy of a CNN for tests, made independently of the quantizer plugin: every Conv and Gemm
 * reads its input through QuantizeLinear -> DequantizeLinear (uint8, asymmetric, MinMax range
 * over `calibration`). Its weight is int8 symmetric per tensor: by default fake-quantized (a float
 * initializer behind QuantizeLinear -> DequantizeLinear, the QAT form); with `realWeights`, real
 * QDQ as static quantization writes it (an int8 initializer, and an int32 bias with scale
 * s_input * s_weight, read through DequantizeLinear).
 */
export async function addFakeQuantization(source: OnnxModel, calibration: Dataset, options: { readonly realWeights?: boolean } = {}): Promise<OnnxModel> {
  const model = source.clone();
  const graph = model.graph;
  const layers = graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
  const ranges = await collectMinMax(model, [...new Set(layers.map((n) => n.input[0] as string))], calibration);
  const fakeQuantize = (tensor: string, scale: number, zeroPoint: number, signed: boolean): string => {
    const prefix = graph.uniqueName(`${tensor}_qdq`);
    graph.setInitializer(arrayToTensor(`${prefix}.scale`, Float32Array.of(scale), []));
    graph.setInitializer(arrayToTensor(`${prefix}.zero_point`, signed ? Int8Array.of(zeroPoint) : Uint8Array.of(zeroPoint), []));
    const quantized = `${prefix}.q`;
    const dequantized = `${prefix}.dq`;
    graph.addNode(makeNode('QuantizeLinear', [tensor, `${prefix}.scale`, `${prefix}.zero_point`], [quantized], {}, `${prefix}/Q`));
    graph.addNode(makeNode('DequantizeLinear', [quantized, `${prefix}.scale`, `${prefix}.zero_point`], [dequantized], {}, `${prefix}/DQ`));
    return dequantized;
  };
  const dequantizeFrom = (name: string, data: Int8Array | Int32Array, dims: readonly number[], scale: number): string => {
    graph.setInitializer(arrayToTensor(`${name}.quantized`, data, [...dims]));
    graph.setInitializer(arrayToTensor(`${name}.scale`, Float32Array.of(scale), []));
    graph.addNode(makeNode('DequantizeLinear', [`${name}.quantized`, `${name}.scale`], [`${name}.dequantized`], {}, `${name}/DQ`));
    return `${name}.dequantized`;
  };
  const activations = new Map<string, { output: string; scale: number }>();
  for (const layer of layers) {
    const input = layer.input[0] as string;
    let activation = activations.get(input);
    if (activation === undefined) {
      const { min, max } = ranges.get(input)!;
      const low = Math.min(0, min);
      const scale = (Math.max(0, max) - low) / 255;
      activation = { output: fakeQuantize(input, scale, Math.round(-low / scale), false), scale };
      activations.set(input, activation);
    }
    graph.setNodeInput(layer, 0, activation.output);
    const weight = layer.input[1] as string;
    const values = tensorToArray(graph.getInitializer(weight)!) as Float32Array;
    const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
    if (options.realWeights !== true) {
      graph.setNodeInput(layer, 1, fakeQuantize(weight, scale, 0, true));
      continue;
    }
    graph.setNodeInput(layer, 1, dequantizeFrom(weight, Int8Array.from(values, (v) => Math.round(v / scale)), tensorDims(graph.getInitializer(weight)!), scale));
    graph.removeInitializer(weight);
    const bias = layer.input[2];
    if (bias === undefined || bias === '') continue;
    const biasValues = tensorToArray(graph.getInitializer(bias)!) as Float32Array;
    const biasScale = activation.scale * scale;
    graph.setNodeInput(layer, 2, dequantizeFrom(bias, Int32Array.from(biasValues, (v) => Math.round(v / biasScale)), [biasValues.length], biasScale));
    graph.removeInitializer(bias);
  }
  graph.sortTopologically();
  return model;
}
