import { getFloatAttribute, getStringAttribute } from '../../attributes.js';
import { DataType } from '../../proto.js';
import type { GradientContext, GradientRule, GradientRuleTable } from '../GradientRule.js';

/** A rule for a one-input op whose gradient is `dY * f(X, Y)`. */
function unary(gradient: (c: GradientContext, dY: string, x: string, y: string) => string): GradientRule {
  return {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      return [gradient(c, dY, c.input(0), c.output(0))];
    },
  };
}

const zero = (c: GradientContext): string => c.scalar(0);

/**
 * `dY` where `condition` holds, else 0: dY * Cast(condition). onnxruntime's CPU Where was
 * about 10x slower than Cast + Mul on a [64, 6, 28, 28] tensor (3.5 ms against 0.37 ms).
 */
function masked(c: GradientContext, dY: string, condition: string): string {
  return c.op('Mul', [dY, c.op('Cast', [condition], { to: DataType.FLOAT })]);
}

/** A float version of input `slot` (Pow's exponent may be an integer tensor). */
function asFloat(c: GradientContext, slot: number): string {
  const name = c.input(slot);
  const type = c.dataType(name);
  return type === DataType.FLOAT || type === DataType.UNDEFINED ? name : c.op('Cast', [name], { to: DataType.FLOAT });
}

/**
 * Gradients of elementwise ops. Binary ops follow numpy broadcasting: the gradient of a
 * broadcast input is summed over the axes it was broadcast along (`reduceToShapeOf`).
 * At kinks (Relu at 0, Clip at its bounds) the choice is PyTorch's.
 */
export const elementwiseGradients: GradientRuleTable = {
  Add: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      return [
        c.needsGradient(0) ? c.reduceToShapeOf(dY, c.input(0)) : undefined,
        c.needsGradient(1) ? c.reduceToShapeOf(dY, c.input(1)) : undefined,
      ];
    },
  },
  Sub: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      return [
        c.needsGradient(0) ? c.reduceToShapeOf(dY, c.input(0)) : undefined,
        c.needsGradient(1) ? c.reduceToShapeOf(c.op('Neg', [dY]), c.input(1)) : undefined,
      ];
    },
  },
  Mul: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const [a, b] = [c.input(0), c.input(1)];
      return [
        c.needsGradient(0) ? c.reduceToShapeOf(c.op('Mul', [dY, b]), a) : undefined,
        c.needsGradient(1) ? c.reduceToShapeOf(c.op('Mul', [dY, a]), b) : undefined,
      ];
    },
  },
  Div: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const [a, b, y] = [c.input(0), c.input(1), c.output(0)];
      // d(a/b)/db = -a/b^2 = -y/b
      return [
        c.needsGradient(0) ? c.reduceToShapeOf(c.op('Div', [dY, b]), a) : undefined,
        c.needsGradient(1) ? c.reduceToShapeOf(c.op('Neg', [c.op('Mul', [dY, c.op('Div', [y, b])])]), b) : undefined,
      ];
    },
  },
  Pow: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined) return [];
      const [x, y] = [c.input(0), c.output(0)];
      let dX: string | undefined;
      let dE: string | undefined;
      if (c.needsGradient(0)) {
        const e = asFloat(c, 1);
        // e * x^(e-1), computed as a power rather than y / x so that x = 0 stays finite.
        const slope = c.op('Mul', [e, c.op('Pow', [x, c.op('Sub', [e, c.scalar(1)])])]);
        dX = c.reduceToShapeOf(c.op('Mul', [dY, slope]), x);
      }
      if (c.needsGradient(1)) dE = c.reduceToShapeOf(c.op('Mul', [dY, c.op('Mul', [y, c.op('Log', [x])])]), c.input(1));
      return [dX, dE];
    },
  },
  Sqrt: unary((c, dY, _x, y) => c.op('Div', [c.op('Mul', [dY, c.scalar(0.5)]), y])),
  Relu: unary((c, dY, x) => masked(c, dY, c.op('Greater', [x, zero(c)]))),
  LeakyRelu: unary((c, dY, x) => {
    const alpha = getFloatAttribute(c.node, 'alpha', 0.01);
    // slope = alpha + (1 - alpha) * [x > 0]
    const positive = c.op('Cast', [c.op('Greater', [x, zero(c)])], { to: DataType.FLOAT });
    const slope = c.op('Add', [c.op('Mul', [positive, c.scalar(1 - alpha)]), c.scalar(alpha)]);
    return c.op('Mul', [dY, slope]);
  }),
  Clip: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      const x = c.input(0);
      // PyTorch's clamp passes the gradient where min <= x <= max (bounds included).
      const conditions: string[] = [];
      if (c.input(1) !== '') conditions.push(c.op('GreaterOrEqual', [x, c.input(1)]));
      if (c.input(2) !== '') conditions.push(c.op('LessOrEqual', [x, c.input(2)]));
      if (conditions.length === 0) return [dY];
      const inside = conditions.length === 1 ? (conditions[0] as string) : c.op('And', conditions);
      return [masked(c, dY, inside)];
    },
  },
  Sigmoid: unary((c, dY, _x, y) => c.op('Mul', [dY, c.op('Mul', [y, c.op('Sub', [c.scalar(1), y])])])),
  HardSigmoid: unary((c, dY, x) => {
    const alpha = getFloatAttribute(c.node, 'alpha', 0.2);
    const beta = getFloatAttribute(c.node, 'beta', 0.5);
    const linear = c.op('Add', [c.op('Mul', [x, c.scalar(alpha)]), c.scalar(beta)]);
    // Slope alpha strictly inside (0, 1), zero on the flat parts (as PyTorch's hardsigmoid).
    const inside = c.op('And', [c.op('Greater', [linear, zero(c)]), c.op('Less', [linear, c.scalar(1)])]);
    return masked(c, c.op('Mul', [dY, c.scalar(alpha)]), inside);
  }),
  Tanh: unary((c, dY, _x, y) => c.op('Mul', [dY, c.op('Sub', [c.scalar(1), c.op('Mul', [y, y])])])),
  Erf: unary((c, dY, x) => {
    const gaussian = c.op('Exp', [c.op('Neg', [c.op('Mul', [x, x])])]);
    return c.op('Mul', [dY, c.op('Mul', [gaussian, c.scalar(2 / Math.sqrt(Math.PI))])]);
  }),
  Gelu: unary((c, dY, x) => {
    if (getStringAttribute(c.node, 'approximate', 'none') === 'tanh') {
      // y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
      const k = Math.sqrt(2 / Math.PI);
      const square = c.op('Mul', [x, x]);
      const u = c.op('Mul', [c.op('Mul', [x, c.op('Add', [c.scalar(1), c.op('Mul', [square, c.scalar(0.044715)])])]), c.scalar(k)]);
      const t = c.op('Tanh', [u]);
      const du = c.op('Add', [c.scalar(k), c.op('Mul', [square, c.scalar(3 * 0.044715 * k)])]);
      const half = c.op('Mul', [c.op('Add', [c.scalar(1), t]), c.scalar(0.5)]);
      const curve = c.op('Mul', [c.op('Mul', [c.op('Mul', [x, c.scalar(0.5)]), c.op('Sub', [c.scalar(1), c.op('Mul', [t, t])])]), du]);
      return c.op('Mul', [dY, c.op('Add', [half, curve])]);
    }
    // y = x Phi(x): dy/dx = Phi(x) + x phi(x)
    const cdf = c.op('Mul', [c.op('Add', [c.scalar(1), c.op('Erf', [c.op('Mul', [x, c.scalar(Math.SQRT1_2)])])]), c.scalar(0.5)]);
    const pdf = c.op('Mul', [c.op('Exp', [c.op('Mul', [c.op('Mul', [x, x]), c.scalar(-0.5)])]), c.scalar(1 / Math.sqrt(2 * Math.PI))]);
    return c.op('Mul', [dY, c.op('Add', [cdf, c.op('Mul', [x, pdf])])]);
  }),
  Identity: unary((_c, dY) => dY),
  Neg: unary((c, dY) => c.op('Neg', [dY])),
  Exp: unary((c, dY, _x, y) => c.op('Mul', [dY, y])),
  Log: unary((c, dY, x) => c.op('Div', [dY, x])),
};
