import { getIntAttribute } from '../../attributes.js';
import type { GradientRuleTable } from '../GradientRule.js';

/**
 * Gradients of Softmax and LogSoftmax along their `axis` (opset 13 semantics: one axis, default
 * -1), from the forward output Y: Softmax dX = Y (dY - sum(dY Y)), LogSoftmax
 * dX = dY - exp(Y) sum(dY), the sums along the axis.
 */
export const softmaxGradients: GradientRuleTable = {
  Softmax: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      const y = c.output(0);
      const axis = getIntAttribute(c.node, 'axis', -1);
      const projection = c.reduceSum(c.op('Mul', [dY, y]), [axis], true);
      return [c.op('Mul', [y, c.op('Sub', [dY, projection])])];
    },
  },
  LogSoftmax: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      const axis = getIntAttribute(c.node, 'axis', -1);
      const total = c.reduceSum(dY, [axis], true);
      return [c.op('Sub', [dY, c.op('Mul', [c.op('Exp', [c.output(0)]), total])])];
    },
  },
};
