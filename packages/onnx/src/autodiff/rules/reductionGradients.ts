import { findAttribute, getIntAttribute } from '../../attributes.js';
import { DataType } from '../../proto.js';
import type { GradientContext, GradientRule, GradientRuleTable } from '../GradientRule.js';

/**
 * dY broadcast back over the reduced axes of X (Unsqueeze first when keepdims = 0), times
 * `scale` (a tensor name) when given. Axes come from the attribute (ReduceMean before opset
 * 18) or input 1, and may be negative; none means every axis unless noop_with_empty_axes.
 */
function broadcastBack(c: GradientContext, dY: string, scale?: (c: GradientContext) => string): string {
  const x = c.input(0);
  const attribute = findAttribute(c.node, 'axes');
  const axes = attribute !== undefined ? c.ints(attribute.ints.map(Number)) : c.input(1) !== '' ? c.input(1) : undefined;
  if (axes === undefined && getIntAttribute(c.node, 'noop_with_empty_axes', 0) === 1) return dY;
  const keepDims = getIntAttribute(c.node, 'keepdims', 1) === 1;
  // With every axis reduced and keepdims = 0, dY is a scalar and broadcasts as it is.
  const shaped = keepDims || axes === undefined ? dY : c.op('Unsqueeze', [dY, axes]);
  const scaled = scale === undefined ? shaped : c.op('Mul', [shaped, scale(c)]);
  return c.op('Expand', [scaled, c.shape(x)]);
}

/** Size(Y) / Size(X): one over the number of elements each mean averages. */
function inverseCount(c: GradientContext): string {
  const size = (name: string): string => c.op('Cast', [c.op('Size', [name])], { to: DataType.FLOAT });
  return c.op('Div', [size(c.output(0)), size(c.input(0))]);
}

function reduction(scale?: (c: GradientContext) => string): GradientRule {
  return {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [broadcastBack(c, dY, scale)];
    },
  };
}

/** Gradients of ReduceSum and ReduceMean (axes as attribute or input, keepdims both ways). */
export const reductionGradients: GradientRuleTable = {
  ReduceSum: reduction(),
  ReduceMean: reduction(inverseCount),
};
