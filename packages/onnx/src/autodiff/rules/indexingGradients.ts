import { getIntAttribute } from '../../attributes.js';
import { DataType } from '../../proto.js';
import { arrayToTensor } from '../../tensor.js';
import type { GradientContext, GradientRuleTable } from '../GradientRule.js';
import { rankOf } from './rankOf.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Float zeros of the shape given by an int64 shape tensor. */
function zerosOfShape(c: GradientContext, shape: string): string {
  return c.op('ConstantOfShape', [shape], { value: arrayToTensor('value', Float32Array.of(0), [1]) });
}

/**
 * dL/dX of Slice, for any starts, ends, axes and steps (negative, clamped, given at run time):
 * the same Slice applied to the flat positions of X (a Range reshaped like X) yields the
 * position of every element of Y, and ScatterElements writes dY there into zeros (a slice
 * reads each position at most once, so no accumulation is needed).
 */
function sliceInputGradient(c: GradientContext, dY: string): string {
  const x = c.input(0);
  const shape = c.shape(x);
  const count = c.op('Size', [x]);
  const positions = c.op('Reshape', [
    c.op('Range', [c.constant(BigInt64Array.of(0n), []), count, c.constant(BigInt64Array.of(1n), [])]),
    shape,
  ]);
  const sliceInputs = [positions, ...c.node.input.slice(1)];
  const picked = c.op('Slice', sliceInputs);
  const flat = c.ints([-1]);
  const scattered = c.op('ScatterElements', [
    zerosOfShape(c, c.op('Reshape', [count, c.ints([1])])),
    c.op('Reshape', [picked, flat]),
    c.op('Reshape', [dY, flat]),
  ]);
  return c.op('Reshape', [scattered, shape]);
}

/**
 * dL/dX of Gather along `axis`: ScatterND with reduction `add` into zeros, exact for repeated
 * indices (an embedding row read twice gets both gradients). For axis > 0 the gathered axis is
 * moved to the front first, and the result moved back. Negative indices count from the end.
 */
function gatherInputGradient(c: GradientContext, dY: string): string {
  const [x, indices] = [c.input(0), c.input(1)];
  const rank = rankOf(c, x);
  const indexRank = rankOf(c, indices);
  const attribute = getIntAttribute(c.node, 'axis', 0);
  const axis = attribute < 0 ? attribute + rank : attribute;
  const asInt64 = c.dataType(indices) === DataType.INT64 ? indices : c.op('Cast', [indices], { to: DataType.INT64 });
  const axisSize = c.op('Gather', [c.shape(x), c.constant(BigInt64Array.of(BigInt(axis)), [])]);
  const normalized = c.op('Where', [
    c.op('Less', [asInt64, c.constant(BigInt64Array.of(0n), [])]),
    c.op('Add', [asInt64, axisSize]),
    asInt64,
  ]);
  const scatterIndices = c.op('Unsqueeze', [normalized, c.ints([-1])]);
  if (axis === 0) {
    return c.op('ScatterND', [zerosOfShape(c, c.shape(x)), scatterIndices, dY], { reduction: 'add' });
  }
  // X viewed as [X[axis], X[:axis], X[axis+1:]]; dY as [I..., X[:axis], X[axis+1:]].
  const xPerm = [axis, ...range(0, axis), ...range(axis + 1, rank)];
  const dYPerm = [...range(axis, axis + indexRank), ...range(0, axis), ...range(axis + indexRank, rank - 1 + indexRank)];
  const movedShape = c.op('Gather', [c.shape(x), c.ints(xPerm)]);
  const moved = c.op('ScatterND', [zerosOfShape(c, movedShape), scatterIndices, c.op('Transpose', [dY], { perm: dYPerm })], {
    reduction: 'add',
  });
  const inverse = new Array<number>(rank);
  xPerm.forEach((from, i) => {
    inverse[from] = i;
  });
  return c.op('Transpose', [moved], { perm: inverse });
}

/** Gradients of Slice (any steps, negative and clamped indices) and Gather (any axis, repeated indices). */
export const indexingGradients: GradientRuleTable = {
  Slice: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [sliceInputGradient(c, dY)];
    },
  },
  Gather: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [gatherInputGradient(c, dY)];
    },
  },
};
