import { ModelFormatError, UnsupportedOperationError } from '@open-autoglm/core';
import type { OnnxModel } from '@open-autoglm/onnx';

/** Ops that only appear in a model that is already quantized. */
const QUANTIZED_OPS: ReadonlySet<string> = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'MatMulInteger',
  'ConvInteger',
  'QLinearAdd',
  'QLinearMul',
  'QGemm',
  'QLinearConcat',
  'QLinearGlobalAveragePool',
  'QLinearAveragePool',
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
]);

/** The lowest opset with per-axis QuantizeLinear/DequantizeLinear, which per-channel weights need. */
export const MIN_QUANTIZATION_OPSET = 13;

/**
 * Refuses models this quantizer cannot handle correctly, before any work: a default-domain opset
 * below 13 (no per-axis QuantizeLinear), and models that are already quantized (quantizing twice
 * would stack rounding errors and confuse ORT's QDQ fusion).
 */
export function checkQuantizable(model: OnnxModel): void {
  const label = model.source ?? 'the in-memory model';
  const opset = model.opsetVersion('') ?? model.opsetVersion('ai.onnx');
  if (opset === undefined || opset < MIN_QUANTIZATION_OPSET) {
    throw new UnsupportedOperationError(
      `Model ${label} uses opset ${opset ?? '(none)'}, but INT8 quantization needs opset ${MIN_QUANTIZATION_OPSET} or newer ` +
        '(per-channel QuantizeLinear/DequantizeLinear). Re-export it with opset_version=13 or later ' +
        '(torch.onnx.export(..., opset_version=17)) or convert it with onnx.version_converter.',
      { file: model.source },
    );
  }
  const quantized = model.graph.nodes.find((node) => QUANTIZED_OPS.has(node.opType));
  if (quantized !== undefined) {
    throw new ModelFormatError(
      `Model ${label} is already quantized: it contains ${quantized.opType} node "${quantized.name}". ` +
        'Quantize the original float model instead.',
      { file: model.source },
    );
  }
}
