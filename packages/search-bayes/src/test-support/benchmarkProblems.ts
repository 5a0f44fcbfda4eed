/**
 * Standard optimization test problems with published optima, for the samplers' tests.
 */

/** Branin-Hoo on x in [-5, 10], y in [0, 15]; global minimum 0.397887 (three minimizers). */
export function branin(x: number, y: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (y - b * x * x + c * x - 6) ** 2 + 10 * (1 - t) * Math.cos(x) + 10;
}

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
];

/** Hartmann-6 on [0, 1]^6; global minimum -3.32237. */
export function hartmann6(x: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < 4; i++) {
    let inner = 0;
    for (let j = 0; j < 6; j++) inner += (hartmannA[i]?.[j] ?? 0) * ((x[j] ?? 0) - (hartmannP[i]?.[j] ?? 0) * 1e-4) ** 2;
    total -= (hartmannAlpha[i] ?? 0) * Math.exp(-inner);
  }
  return total;
}

/** ZDT1 on [0, 1]^n (two objectives, both minimized); its Pareto front is f2 = 1 - sqrt(f1). */
export function zdt1(x: readonly number[]): [number, number] {
  const f1 = x[0] ?? 0;
  const g = 1 + (9 * x.slice(1).reduce((sum, value) => sum + value, 0)) / (x.length - 1);
  return [f1, g * (1 - Math.sqrt(f1 / g))];
}
