/**
 * ZDT1 and ZDT2 (Zitzler, Deb & Thiele 2000) with n variables in [0, 1]; both objectives are
 * minimized. ZDT1's Pareto front is convex (f2 = 1 - sqrt(f1)), ZDT2's concave (f2 = 1 - f1^2).
 */

export interface BiObjectiveProblem {
  readonly name: string;
  readonly variables: number;
  evaluate(x: readonly number[]): [number, number];
}

function zdt(name: string, shape: (ratio: number) => number, variables: number): BiObjectiveProblem {
  return {
    name,
    variables,
    evaluate(x) {
      const f1 = x[0] as number;
      let tail = 0;
      for (let i = 1; i < x.length; i++) tail += x[i] as number;
      const g = 1 + (9 * tail) / (x.length - 1);
      return [f1, g * (1 - shape(f1 / g))];
    },
  };
}

export const zdt1 = zdt('zdt1', Math.sqrt, 10);
export const zdt2 = zdt('zdt2', (r) => r * r, 10);
