import { foldBatchNormalization, foldConstants, type OnnxModel } from '@open-autoglm/onnx';

/**
 * A copy of the model ready to quantize: BatchNormalization folded into the Conv/Gemm before it
 * (one int8 weight instead of a float BatchNorm between two quantized ops), constants folded (so
 * weights read through Identity become plain initializers), and a name on every node, since
 * layers are named in options, search spaces and reports.
 */
export function prepareForQuantization(model: OnnxModel): OnnxModel {
  const copy = model.clone();
  foldBatchNormalization(copy.proto);
  foldConstants(copy.proto);
  const graph = copy.graph;
  const used = new Set(graph.nodes.map((node) => node.name).filter((name) => name !== ''));
  graph.nodes.forEach((node, position) => {
    if (node.name !== '') return;
    let name = `${node.opType}_${position}`;
    for (let k = 1; used.has(name); k++) name = `${node.opType}_${position}_${k}`;
    node.name = name;
    used.add(name);
  });
  return copy;
}
