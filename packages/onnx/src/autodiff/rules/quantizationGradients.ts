import { UnsupportedOperationError } from '@open-autoglm/core';
import { getIntAttribute } from '../../attributes.js';
import { dataTypeName } from '../../tensor.js';
import { describeNode } from '../../OnnxGraph.js';
import { DataType } from '../../proto.js';
import type { GradientContext, GradientRuleTable } from '../GradientRule.js';

/** The representable range of each quantized type. */
const QUANTIZED_RANGES: ReadonlyMap<DataType, readonly [number, number]> = new Map([
  [DataType.UINT8, [0, 255]],
  [DataType.INT8, [-128, 127]],
  [DataType.UINT16, [0, 65535]],
  [DataType.INT16, [-32768, 32767]],
  [DataType.UINT4, [0, 15]],
  [DataType.INT4, [-8, 7]],
]);

/**
 * A scale or zero point as a float tensor that broadcasts against input 0: scalars as they
 * are, per-axis vectors reshaped to [1, .., C, .., 1] along the node's `axis` (default 1).
 */
function broadcastParameter(c: GradientContext, name: string): string {
  const value = c.dataType(name) === DataType.FLOAT ? name : c.op('Cast', [name], { to: DataType.FLOAT });
  const dims = c.dims(name);
  if (dims === undefined || dims.length === 0) return value;
  const rank = c.dims(c.input(0))?.length;
  if (dims.length !== 1 || rank === undefined) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: only per-tensor and per-axis quantization parameters are supported, ` +
        `and "${name}" has ${dims.length} dims${rank === undefined ? ' or the input rank is unknown' : ''}. Use per-tensor or per-channel quantization for training.`,
    );
  }
  const attribute = getIntAttribute(c.node, 'axis', 1);
  const axis = attribute < 0 ? attribute + rank : attribute;
  return c.op('Reshape', [value, c.ints(Array.from({ length: rank }, (_, i) => (i === axis ? -1 : 1)))]);
}

/**
 * Straight-through fake quantization, QuantizeLinear -> DequantizeLinear, as in PyTorch's
 * fake_quantize: the gradient passes where round(x / scale) + zero_point lies inside the
 * quantized type's range and is zero where the value was clamped. QuantizeLinear's integer
 * output carries the gradient with respect to the quantized value: DequantizeLinear gives
 * dY * scale, QuantizeLinear turns it back into dY (divided by the scale) masked to the range.
 * Per-tensor and per-axis parameters; the scale and zero point are not trained.
 */
export const quantizationGradients: GradientRuleTable = {
  QuantizeLinear: {
    integerOutputsCarryGradient: true,
    backward: (c) => {
      const dQ = c.outputGradient(0);
      if (dQ === undefined || !c.needsGradient(0)) return [];
      const type = c.dataType(c.output(0));
      const bounds = QUANTIZED_RANGES.get(type);
      if (bounds === undefined) {
        throw new UnsupportedOperationError(
          `Cannot build the gradient of ${describeNode(c.node)}: quantizing to ${dataTypeName(type)} is not supported for training. ` +
            'Use int8, uint8, int16, uint16, int4 or uint4.',
        );
      }
      const scale = broadcastParameter(c, c.input(1));
      let level = c.op('Round', [c.op('Div', [c.input(0), scale])]);
      if (c.input(2) !== '') level = c.op('Add', [level, broadcastParameter(c, c.input(2))]);
      const inside = c.op('And', [c.op('GreaterOrEqual', [level, c.scalar(bounds[0])]), c.op('LessOrEqual', [level, c.scalar(bounds[1])])]);
      return [c.op('Where', [inside, c.op('Div', [dQ, scale]), c.scalar(0)])];
    },
  },
  DequantizeLinear: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [c.op('Mul', [dY, broadcastParameter(c, c.input(1))])];
    },
  },
};
