/**
 * The single-objective test functions of the search benchmark (issue #8), with the domains the
 * issue fixes and their known global minima. Definitions follow Surjanovic & Bingham's Virtual
 * Library of Simulation Experiments (sfu.ca/~ssurjano).
 */

export interface SingleObjectiveProblem {
  readonly name: string;
  /** [low, high] per variable. */
  readonly bounds: readonly (readonly [number, number])[];
  readonly globalMinimum: number;
  evaluate(x: readonly number[]): number;
}

const at = (x: readonly number[], i: number): number => x[i] as number;

export const branin: SingleObjectiveProblem = {
  name: 'branin',
  bounds: [
    [-5, 10],
    [0, 15],
  ],
  globalMinimum: 0.397887,
  evaluate(x) {
    const [x1, x2] = [at(x, 0), at(x, 1)];
    const b = 5.1 / (4 * Math.PI * Math.PI);
    const c = 5 / Math.PI;
    const t = 1 / (8 * Math.PI);
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
  },
};

const hartmannAlpha = [1.0, 1.2, 3.0, 3.2];
const hartmannA = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const hartmannP = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((row) => row.map((v) => v * 1e-4));

export const hartmann6: SingleObjectiveProblem = {
  name: 'hartmann6',
  bounds: Array.from({ length: 6 }, () => [0, 1] as const),
  globalMinimum: -3.32237,
  evaluate(x) {
    let sum = 0;
    for (let i = 0; i < 4; i++) {
      let inner = 0;
      for (let j = 0; j < 6; j++) inner += (hartmannA[i]?.[j] as number) * (at(x, j) - (hartmannP[i]?.[j] as number)) ** 2;
      sum += (hartmannAlpha[i] as number) * Math.exp(-inner);
    }
    return -sum;
  },
};

export const rosenbrock5: SingleObjectiveProblem = {
  name: 'rosenbrock5',
  bounds: Array.from({ length: 5 }, () => [-5, 10] as const),
  globalMinimum: 0,
  evaluate(x) {
    let sum = 0;
    for (let i = 0; i < x.length - 1; i++) sum += 100 * (at(x, i + 1) - at(x, i) ** 2) ** 2 + (1 - at(x, i)) ** 2;
    return sum;
  },
};

export const ackley10: SingleObjectiveProblem = {
  name: 'ackley10',
  bounds: Array.from({ length: 10 }, () => [-32.768, 32.768] as const),
  globalMinimum: 0,
  evaluate(x) {
    let squares = 0;
    let cosines = 0;
    for (const v of x) {
      squares += v * v;
      cosines += Math.cos(2 * Math.PI * v);
    }
    const d = x.length;
    return -20 * Math.exp(-0.2 * Math.sqrt(squares / d)) - Math.exp(cosines / d) + 20 + Math.E;
  },
};

export const singleObjectiveProblems: readonly SingleObjectiveProblem[] = [branin, hartmann6, rosenbrock5, ackley10];
