import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel } from '@open-autoglm/onnx';

/** One Gemm of `gemmChain`: its own weight, or (`tiedTo`) the weight of an earlier layer. */
export type GemmLayer =
  | { readonly weight: Float32Array; readonly dims: [number, number]; readonly bias: Float32Array; readonly transB: 0 | 1 }
  | { readonly tiedTo: number; readonly bias: Float32Array; readonly transB: 0 | 1 };

/** x [batch, k] -> Gemm -> Relu -> Gemm -> ... -> Gemm -> y (float32), weights w0, w1, ... and biases b0, b1, .... */
export function gemmChain(k: number, layers: readonly GemmLayer[]): OnnxModel {
  const nodes = layers.flatMap((layer, i) => {
    const input = i === 0 ? 'x' : `r${i - 1}`;
    const output = i === layers.length - 1 ? 'y' : `t${i}`;
    const weight = 'tiedTo' in layer ? `w${layer.tiedTo}` : `w${i}`;
    const gemm = makeNode('Gemm', [input, weight, `b${i}`], [output], { transB: layer.transB }, `fc${i}`);
    return i === layers.length - 1 ? [gemm] : [gemm, makeNode('Relu', [output], [`r${i}`], {}, `relu${i}`)];
  });
  return new OnnxModel(
    makeModel({
      name: 'gemm-chain',
      node: nodes,
      initializer: layers.flatMap((layer, i) => [
        ...('tiedTo' in layer ? [] : [arrayToTensor(`w${i}`, layer.weight, layer.dims)]),
        arrayToTensor(`b${i}`, layer.bias, [layer.bias.length]),
      ]),
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', k])],
      output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', layers.at(-1)?.bias.length ?? 0])],
    }),
  );
}
