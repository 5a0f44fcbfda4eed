import { SeededRandom, UnsupportedOperationError } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  getIntAttribute,
  type NodeProto,
  type OnnxModel,
  type TensorProto,
  tensorDims,
} from '@open-autoglm/onnx';

/** How one initializer was re-initialized. */
export interface ReinitializedTensor {
  readonly name: string;
  /** `uniform` draws from U(-bound, bound); `normal` from N(0, 1); `constant` fills `value`. */
  readonly rule: 'uniform' | 'normal' | 'constant';
  readonly bound?: number;
  readonly value?: number;
}

/**
 * Replaces the learnable parameters of a model with fresh values drawn with a fixed seed,
 * following PyTorch's default initialization of the layers the ONNX operators come from:
 * - Conv / ConvTranspose / Gemm / MatMul weights: kaiming-uniform with a = sqrt(5), which is
 *   U(-1/sqrt(fan_in), 1/sqrt(fan_in)); their biases (the Conv/Gemm bias input, or the Add of a
 *   1-D initializer right after a MatMul) U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in;
 * - BatchNormalization: scale 1, bias 0, running mean 0, running variance 1;
 * - LayerNormalization: scale 1, bias 0;
 * - Gather tables (embeddings): N(0, 1).
 * fan_in is what PyTorch computes: dims[1] * kernel size for Conv and ConvTranspose weights
 * (PyTorch's weight layouts), the input width for Gemm/MatMul weights. Initializers are visited in
 * node order, each once even when shared, so the result depends only on the graph and the seed.
 * Float32 initializers only; the model is changed in place. Returns what was re-initialized.
 */
export function reinitializeParameters(model: OnnxModel, seed: number): ReinitializedTensor[] {
  const graph = model.graph;
  const random = new SeededRandom(seed);
  const done = new Set<string>();
  const report: ReinitializedTensor[] = [];

  const initializer = (name: string | undefined): TensorProto | undefined => {
    if (name === undefined || name === '' || done.has(name)) return undefined;
    const tensor = graph.getInitializer(name);
    if (tensor === undefined || tensor.dataType !== DataType.FLOAT) return undefined;
    return tensor;
  };
  const write = (tensor: TensorProto, entry: ReinitializedTensor, draw: () => number): void => {
    const dims = tensorDims(tensor);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = draw();
    graph.setInitializer(arrayToTensor(tensor.name, data, dims, DataType.FLOAT));
    done.add(tensor.name);
    report.push(entry);
  };
  const uniform = (name: string | undefined, fanIn: number): void => {
    const tensor = initializer(name);
    if (tensor === undefined) return;
    const bound = 1 / Math.sqrt(fanIn);
    write(tensor, { name: tensor.name, rule: 'uniform', bound }, () => (2 * random.nextFloat() - 1) * bound);
  };
  const constant = (name: string | undefined, value: number): void => {
    const tensor = initializer(name);
    if (tensor !== undefined) write(tensor, { name: tensor.name, rule: 'constant', value }, () => value);
  };
  const normal = (name: string | undefined): void => {
    const tensor = initializer(name);
    if (tensor !== undefined) write(tensor, { name: tensor.name, rule: 'normal' }, () => random.nextNormal());
  };

  for (const node of graph.nodes) {
    switch (node.opType) {
      case 'Conv':
      case 'ConvTranspose': {
        const weight = initializer(node.input[1]);
        if (weight === undefined) break;
        const dims = tensorDims(weight);
        const fanIn = dims.slice(1).reduce((a, b) => a * b, 1);
        uniform(node.input[1], fanIn);
        uniform(node.input[2], fanIn);
        break;
      }
      case 'Gemm': {
        const weight = initializer(node.input[1]);
        if (weight === undefined) break;
        const dims = tensorDims(weight);
        const fanIn = (getIntAttribute(node, 'transB', 0) === 1 ? dims[1] : dims[0]) ?? 1;
        uniform(node.input[1], fanIn);
        uniform(node.input[2], fanIn);
        break;
      }
      case 'MatMul': {
        const weight = initializer(node.input[1]);
        if (weight === undefined) break;
        const dims = tensorDims(weight);
        const fanIn = dims[dims.length - 2] ?? 1;
        uniform(node.input[1], fanIn);
        const bias = biasAddedTo(model, node);
        if (bias !== undefined) uniform(bias, fanIn);
        break;
      }
      case 'BatchNormalization':
        constant(node.input[1], 1);
        constant(node.input[2], 0);
        constant(node.input[3], 0);
        constant(node.input[4], 1);
        break;
      case 'LayerNormalization':
        constant(node.input[1], 1);
        constant(node.input[2], 0);
        break;
      case 'Gather':
        normal(node.input[0]);
        break;
      default:
        break;
    }
  }
  if (report.length === 0) {
    throw new UnsupportedOperationError(
      `Model ${model.source ?? '(in memory)'} has no float32 Conv, Gemm, MatMul, normalization or embedding ` +
        'initializers, so there is nothing to re-initialize. Train it without reinitialization.',
      { file: model.source },
    );
  }
  return report;
}

/** The 1-D initializer added to a MatMul's output (the bias of a pre-transposed Linear), if any. */
function biasAddedTo(model: OnnxModel, matMul: NodeProto): string | undefined {
  const output = matMul.output[0];
  if (output === undefined) return undefined;
  const consumers = model.graph.consumersOf(output);
  const add = consumers.length === 1 ? consumers[0] : undefined;
  if (add?.opType !== 'Add') return undefined;
  const other = add.input[0] === output ? add.input[1] : add.input[0];
  const tensor = other === undefined ? undefined : model.graph.getInitializer(other);
  return tensor !== undefined && tensor.dims.length === 1 ? other : undefined;
}
