import { makeModel, type NodeProto, OnnxModel, type ValueInfoProto } from '@open-autoglm/onnx';

/** A small opset-17 model built in memory, for tests that need a graph the fixtures do not have. */
export function tinyModel(nodes: NodeProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[]): Uint8Array {
  const proto = makeModel({ name: 'tiny', node: nodes, input: inputs, output: outputs });
  return new OnnxModel(proto).toBytes();
}
