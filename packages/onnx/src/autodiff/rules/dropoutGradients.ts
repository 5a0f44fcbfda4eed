import { DataType } from '../../proto.js';
import type { GradientRuleTable } from '../GradientRule.js';

/**
 * Dropout. In `train` mode the forward rewrite turns it on (`training_mode` input true) and
 * asks for its mask, and dX = dY * mask / (1 - ratio); in `eval` mode it stays the identity.
 */
export const dropoutGradients: GradientRuleTable = {
  Dropout: {
    rewriteForward: (c) => {
      if (c.mode !== 'train') return;
      const node = c.node;
      while (node.input.length < 3) node.input.push('');
      node.input[2] = c.constant(Uint8Array.of(1), [], DataType.BOOL);
      while (node.output.length < 2) node.output.push('');
      if (node.output[1] === '') node.output[1] = c.freshName(`${c.output(0)}/mask`);
    },
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      if (c.mode !== 'train') return [dY];
      const ratio = c.input(1) === '' ? c.scalar(0.5) : c.input(1);
      const keep = c.op('Cast', [c.output(1)], { to: DataType.FLOAT });
      const scale = c.op('Reciprocal', [c.op('Sub', [c.scalar(1), ratio])]);
      return [c.op('Mul', [c.op('Mul', [dY, keep]), scale])];
    },
  },
};
