import { getFloatAttribute, getIntAttribute, makeAttribute } from '../../attributes.js';
import type { Dim } from '../../inferShapes.js';
import type { GradientContext, GradientRuleTable } from '../GradientRule.js';
import { rankOf } from './rankOf.js';

/** Gemm(a, b) with the given transposes and scale, as a node of the step graph. */
function gemm(c: GradientContext, a: string, b: string, transA: boolean, transB: boolean, alpha: number): string {
  return c.op('Gemm', [a, b], {
    transA: transA ? 1 : 0,
    transB: transB ? 1 : 0,
    alpha: makeAttribute('alpha', alpha, true),
  });
}

/** Swaps the last two axes of a tensor of rank `rank`. */
function transposeLast(c: GradientContext, name: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return c.op('Transpose', [name], { perm });
}

/**
 * Gradients of Gemm (every transA/transB, alpha, beta, C broadcast to [M, N]) and MatMul
 * (numpy semantics: batched, broadcast batch dims, 1-D operands).
 */
export const linearAlgebraGradients: GradientRuleTable = {
  Gemm: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const [a, b, bias] = [c.input(0), c.input(1), c.input(2)];
      const transA = getIntAttribute(c.node, 'transA', 0) === 1;
      const transB = getIntAttribute(c.node, 'transB', 0) === 1;
      const alpha = getFloatAttribute(c.node, 'alpha', 1);
      const beta = getFloatAttribute(c.node, 'beta', 1);
      // Y = alpha * A' B' + beta * C, with A' = A or A^T and B' = B or B^T.
      // dA' = alpha dY B'^T and dB' = alpha A'^T dY, transposed back when the operand was.
      const dA = !c.needsGradient(0)
        ? undefined
        : transA
          ? gemm(c, b, dY, transB, true, alpha)
          : gemm(c, dY, b, false, !transB, alpha);
      const dB = !c.needsGradient(1)
        ? undefined
        : transB
          ? gemm(c, dY, a, true, transA, alpha)
          : gemm(c, a, dY, !transA, false, alpha);
      let dC: string | undefined;
      if (bias !== '' && c.needsGradient(2)) {
        const scaled = beta === 1 ? dY : c.op('Mul', [dY, c.scalar(beta)]);
        dC = c.reduceToShapeOf(scaled, bias);
      }
      return [dA, dB, dC];
    },
  },
  MatMul: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const [a, b] = [c.input(0), c.input(1)];
      const rankA = rankOf(c, a);
      const rankB = rankOf(c, b);
      const aDims = c.dims(a) as Dim[];
      const bDims = c.dims(b) as Dim[];
      const yDims = c.dims(c.output(0));
      if (rankA === 1 && rankB === 1) {
        // Dot product: Y is a scalar.
        return [c.needsGradient(0) ? c.op('Mul', [dY, b]) : undefined, c.needsGradient(1) ? c.op('Mul', [dY, a]) : undefined];
      }
      if (rankA === 1) {
        // a [K] acts as [1, K]: Y [..., N] = a @ B.
        const dY2 = c.op('Unsqueeze', [dY, c.ints([-2])]); // [..., 1, N]
        const batch = bDims.slice(0, -2);
        const dA = !c.needsGradient(0)
          ? undefined
          : c.reduceToShapeOf(c.op('MatMul', [dY2, transposeLast(c, b, rankB)]), a, [...batch, 1, aDims[0] ?? null]);
        const dB = !c.needsGradient(1)
          ? undefined
          : c.reduceToShapeOf(c.op('MatMul', [c.op('Unsqueeze', [a, c.ints([1])]), dY2]), b, [...batch, aDims[0] ?? null, bDims[rankB - 1] ?? null]);
        return [dA, dB];
      }
      if (rankB === 1) {
        // b [K] acts as [K, 1]: Y [..., M] = A @ b.
        const dY2 = c.op('Unsqueeze', [dY, c.ints([-1])]); // [..., M, 1]
        const dA = !c.needsGradient(0) ? undefined : c.op('MatMul', [dY2, c.op('Unsqueeze', [b, c.ints([0])])]);
        const dB = !c.needsGradient(1)
          ? undefined
          : c.reduceToShapeOf(
              c.op('Squeeze', [c.op('MatMul', [transposeLast(c, a, rankA), dY2]), c.ints([-1])]),
              b,
              [...aDims.slice(0, -2), bDims[0] ?? null],
            );
        return [dA, dB];
      }
      if (yDims === undefined) return [undefined, undefined];
      const batch = yDims.slice(0, -2);
      const [m, n] = [yDims[yDims.length - 2] ?? null, yDims[yDims.length - 1] ?? null];
      const k = aDims[rankA - 1] ?? null;
      const dA = !c.needsGradient(0) ? undefined : c.reduceToShapeOf(c.op('MatMul', [dY, transposeLast(c, b, rankB)]), a, [...batch, m, k]);
      const dB = !c.needsGradient(1) ? undefined : c.reduceToShapeOf(c.op('MatMul', [transposeLast(c, a, rankA), dY]), b, [...batch, k, n]);
      return [dA, dB];
    },
  },
};
