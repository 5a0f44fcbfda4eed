/**
 * The depthwise-convolution case of `npm run bench:train` (issue #3: "depthwise convolutions
 * (mobilenet-style) >= 0.8x PyTorch"): a small MobileNet-v1-style classifier for 1x28x28 input,
 * built with the repo's graph API (no fixture holds one):
 *
 *   conv3x3(1->16)-BN-ReLU, then 4 blocks of [depthwise 3x3 (stride s)-BN-ReLU, pointwise
 *   1x1-BN-ReLU]: 16->32 (s1, 28x28), 32->64 (s2, 14x14), 64->128 (s2, 7x7), 128->128 (s1, 7x7);
 *   global average pool, flatten, fc 128->10.
 *
 * Weights are He-normal from a seeded generator; the bench only times training steps.
 */
import { create } from '@bufbuild/protobuf';
import { SeededRandom } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  GraphProtoSchema,
  makeNode,
  makeTensorValueInfo,
  ModelProtoSchema,
  type NodeProto,
  OnnxModel,
  OperatorSetIdProtoSchema,
  type TensorProto,
} from '@open-autoglm/onnx';

const BLOCKS: readonly { readonly in: number; readonly out: number; readonly stride: number }[] = [
  { in: 16, out: 32, stride: 1 },
  { in: 32, out: 64, stride: 2 },
  { in: 64, out: 128, stride: 2 },
  { in: 128, out: 128, stride: 1 },
];
const CLASSES = 10;

export function mobilenetModel(seed = 0): OnnxModel {
  const random = new SeededRandom(seed);
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const heNormal = (name: string, dims: number[], fanIn: number): void => {
    const count = dims.reduce((a, b) => a * b, 1);
    const scale = Math.sqrt(2 / fanIn);
    initializers.push(arrayToTensor(name, Float32Array.from({ length: count }, () => random.nextNormal() * scale), dims));
  };
  const filled = (name: string, channels: number, value: number): void => {
    initializers.push(arrayToTensor(name, new Float32Array(channels).fill(value), [channels]));
  };
  /** Conv (no bias, as before a BatchNormalization) - BN - ReLU; returns the output name. */
  const convBnRelu = (prefix: string, input: string, inChannels: number, outChannels: number, kernel: number, stride: number, group: number): string => {
    heNormal(`${prefix}.weight`, [outChannels, inChannels / group, kernel, kernel], (inChannels / group) * kernel * kernel);
    const pad = (kernel - 1) / 2;
    nodes.push(makeNode('Conv', [input, `${prefix}.weight`], [`${prefix}.conv`], { group, strides: [stride, stride], pads: [pad, pad, pad, pad], kernel_shape: [kernel, kernel] }));
    filled(`${prefix}.bn.weight`, outChannels, 1);
    filled(`${prefix}.bn.bias`, outChannels, 0);
    filled(`${prefix}.bn.running_mean`, outChannels, 0);
    filled(`${prefix}.bn.running_var`, outChannels, 1);
    const bn = [`${prefix}.bn.weight`, `${prefix}.bn.bias`, `${prefix}.bn.running_mean`, `${prefix}.bn.running_var`];
    nodes.push(makeNode('BatchNormalization', [`${prefix}.conv`, ...bn], [`${prefix}.bn`]));
    nodes.push(makeNode('Relu', [`${prefix}.bn`], [`${prefix}.relu`]));
    return `${prefix}.relu`;
  };
  let x = convBnRelu('stem', 'input', 1, 16, 3, 1, 1);
  BLOCKS.forEach((block, i) => {
    x = convBnRelu(`block${i}.depthwise`, x, block.in, block.in, 3, block.stride, block.in);
    x = convBnRelu(`block${i}.pointwise`, x, block.in, block.out, 1, 1, 1);
  });
  const last = BLOCKS[BLOCKS.length - 1]?.out ?? 16;
  nodes.push(makeNode('GlobalAveragePool', [x], ['pooled']));
  nodes.push(makeNode('Flatten', ['pooled'], ['features'], { axis: 1 }));
  heNormal('fc.weight', [CLASSES, last], last);
  filled('fc.bias', CLASSES, 0);
  nodes.push(makeNode('Gemm', ['features', 'fc.weight', 'fc.bias'], ['logits'], { transB: 1 }));
  const graph = create(GraphProtoSchema, {
    name: 'mobilenet-dw4',
    node: nodes,
    initializer: initializers,
    input: [makeTensorValueInfo('input', DataType.FLOAT, ['batch', 1, 28, 28])],
    output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', CLASSES])],
  });
  return new OnnxModel(
    create(ModelProtoSchema, {
      irVersion: 8n,
      producerName: 'open-autoglm bench',
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
      graph,
    }),
    { source: 'mobilenet-dw4 (built by bench/mobilenetModel.ts)' },
  );
}
