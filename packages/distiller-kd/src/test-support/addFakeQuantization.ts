import { arrayToTensor, makeNode, type OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { collectMinMax, type Dataset } from '@open-autoglm/runtime';

/**
 * A QDQ (QAT-style) copy of a CNN for tests, made independently of the quantizer plugin: every
 * Conv and Gemm reads its input through QuantizeLinear -> DequantizeLinear (uint8, asymmetric,
 * MinMax range over `calibration`) and its float weight through QuantizeLinear ->
 * DequantizeLinear (int8, symmetric, per tensor), so the weights stay trainable float
 * initializers behind straight-through fake quantization.
 */
export async function addFakeQuantization(source: OnnxModel, calibration: Dataset): Promise<OnnxModel> {
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
  const activations = new Map<string, string>();
  for (const layer of layers) {
    const input = layer.input[0] as string;
    let activation = activations.get(input);
    if (activation === undefined) {
      const { min, max } = ranges.get(input)!;
      const low = Math.min(0, min);
      const scale = (Math.max(0, max) - low) / 255;
      activation = fakeQuantize(input, scale, Math.round(-low / scale), false);
      activations.set(input, activation);
    }
    const weight = layer.input[1] as string;
    const values = tensorToArray(graph.getInitializer(weight)!) as Float32Array;
    const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
    const fakeWeight = fakeQuantize(weight, scale, 0, true);
    graph.setNodeInput(layer, 0, activation);
    graph.setNodeInput(layer, 1, fakeWeight);
  }
  graph.sortTopologically();
  return model;
}
