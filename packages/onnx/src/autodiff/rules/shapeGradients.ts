import { getIntAttribute, getIntsAttribute } from '../../attributes.js';
import { DataType } from '../../proto.js';
import type { GradientContext, GradientRule, GradientRuleTable } from '../GradientRule.js';
import { rankOf } from './rankOf.js';

const FLOAT_TYPES: ReadonlySet<DataType> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

/** Ops that only rearrange the elements of input 0: dX is dY reshaped to X's shape. */
const reshapeBack: GradientRule = {
  backward: (c) => {
    const dY = c.outputGradient(0);
    if (dY === undefined || !c.needsGradient(0)) return [];
    const x = c.input(0);
    const dims = c.dims(x);
    const target = dims !== undefined && dims.every((d): d is number => typeof d === 'number') ? c.ints(dims) : c.shape(x);
    return [c.op('Reshape', [dY, target])];
  },
};

/** Sizes of each input of a Concat along `axis`: constants when known, else read at run time. */
function concatSizes(c: GradientContext, axis: number, rank: number): string {
  const inputs = c.node.input;
  const sizes = inputs.map((name) => c.dims(name)?.[axis]);
  if (sizes.every((size): size is number => typeof size === 'number')) return c.ints(sizes);
  const at = c.ints([axis < 0 ? axis + rank : axis]);
  return c.op('Concat', inputs.map((name) => c.op('Gather', [c.shape(name), at])), { axis: 0 });
}

/**
 * Gradients of ops that move, copy or retype data without arithmetic: Flatten, Reshape,
 * Squeeze, Unsqueeze (dY reshaped back), Transpose (the inverse permutation), Concat (dY split
 * at the inputs' sizes), Split (the output gradients concatenated, zeros for unused outputs)
 * and Cast between float types (dY cast back).
 */
export const shapeGradients: GradientRuleTable = {
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      const rank = rankOf(c, c.input(0));
      const perm = getIntsAttribute(c.node, 'perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
      const inverse = new Array<number>(rank);
      perm.forEach((axis, i) => {
        inverse[axis] = i;
      });
      return [c.op('Transpose', [dY], { perm: inverse })];
    },
  },
  Concat: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const rank = rankOf(c, c.output(0));
      const axis = getIntAttribute(c.node, 'axis', 0);
      const parts = c.add('Split', [dY, concatSizes(c, axis, rank)], { axis }, c.node.input.length);
      return parts.map((part, slot) => (c.needsGradient(slot) ? part : undefined));
    },
  },
  Split: {
    backward: (c) => {
      if (!c.needsGradient(0)) return [];
      const axis = getIntAttribute(c.node, 'axis', 0);
      const parts = c.node.output.map((_, slot) => c.outputGradientOrZeros(slot));
      return [parts.length === 1 ? parts[0] : c.op('Concat', parts, { axis })];
    },
  },
  Cast: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      const x = c.input(0);
      const type = c.dataType(x);
      if (dY === undefined || !c.needsGradient(0) || !FLOAT_TYPES.has(type)) return [];
      return [type === c.dataType(c.output(0)) ? dY : c.op('Cast', [dY], { to: type })];
    },
  },
};
