/**
 * Limited-memory BFGS with optional box bounds, in the projected form: the quasi-Newton step is
 * taken on the variables not held at a bound by the gradient, and the backtracking (Armijo) line
 * search follows the projection of that step onto the box. It stops on the same tests as scipy's
 * L-BFGS-B (`pgtol` on the projected gradient, `factr * eps` on the relative decrease), which is
 * what Optuna's GP fitting and acquisition search are tuned for; unlike L-BFGS-B it does not
 * compute a generalized Cauchy point, which matters little for the smooth, low-dimensional
 * problems it serves here.
 */

/** Returns f(x) and writes df/dx into `gradient`; a non-finite value rejects the point. */
export type ObjectiveWithGradient = (x: Float64Array, gradient: Float64Array) => number;

export interface BoxedLbfgsOptions {
  /** Lower bounds per coordinate (-Infinity for none); default unbounded. */
  readonly lower?: Float64Array;
  /** Upper bounds per coordinate (Infinity for none); default unbounded. */
  readonly upper?: Float64Array;
  /** Default 15000 (scipy's). */
  readonly maxIterations?: number;
  /** Stop when max_i |projected gradient_i| <= this; default 1e-5 (scipy's `pgtol`). */
  readonly gradientTolerance?: number;
  /** Stop when (f_k - f_k+1) / max(|f_k|, |f_k+1|, 1) <= this; default 1e7 * eps (scipy's). */
  readonly relativeTolerance?: number;
  /** Number of correction pairs kept; default 10 (scipy's). */
  readonly memory?: number;
}

export interface BoxedLbfgsResult {
  readonly x: Float64Array;
  readonly value: number;
  readonly iterations: number;
  /** False when the line search failed or the iteration limit was reached. */
  readonly converged: boolean;
  readonly message: string;
}

const armijo = 1e-4;
const maxBacktracks = 40;

export function minimizeBoxedLbfgs(objective: ObjectiveWithGradient, x0: Float64Array, options: BoxedLbfgsOptions = {}): BoxedLbfgsResult {
  const n = x0.length;
  const lower = options.lower ?? new Float64Array(n).fill(-Infinity);
  const upper = options.upper ?? new Float64Array(n).fill(Infinity);
  const maxIterations = options.maxIterations ?? 15000;
  const pgtol = options.gradientTolerance ?? 1e-5;
  const ftol = options.relativeTolerance ?? 1e7 * Number.EPSILON;
  const memory = options.memory ?? 10;

  const project = (v: Float64Array): void => {
    for (let i = 0; i < n; i++) v[i] = Math.min(upper[i] as number, Math.max(lower[i] as number, v[i] as number));
  };

  let x = Float64Array.from(x0);
  project(x);
  let g = new Float64Array(n);
  let f = objective(x, g);
  if (!Number.isFinite(f)) return { x, value: f, iterations: 0, converged: false, message: 'the objective is not finite at the starting point' };

  const sHistory: Float64Array[] = [];
  const yHistory: Float64Array[] = [];
  const rhoHistory: number[] = [];
  const free = new Uint8Array(n);
  const direction = new Float64Array(n);
  const alphas = new Float64Array(memory);
  let xNext = new Float64Array(n);
  let gNext = new Float64Array(n);

  const freeDot = (a: Float64Array, b: Float64Array): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) if (free[i] === 1) sum += (a[i] as number) * (b[i] as number);
    return sum;
  };

  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let projectedGradientNorm = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i] as number;
      const gi = g[i] as number;
      const stepped = Math.min(upper[i] as number, Math.max(lower[i] as number, xi - gi));
      projectedGradientNorm = Math.max(projectedGradientNorm, Math.abs(stepped - xi));
      free[i] = (xi <= (lower[i] as number) && gi > 0) || (xi >= (upper[i] as number) && gi < 0) ? 0 : 1;
    }
    if (projectedGradientNorm <= pgtol) {
      return { x, value: f, iterations: iteration, converged: true, message: 'projected gradient below tolerance' };
    }

    // Two-loop recursion on the free variables.
    for (let i = 0; i < n; i++) direction[i] = free[i] === 1 ? (g[i] as number) : 0;
    const m = sHistory.length;
    for (let j = m - 1; j >= 0; j--) {
      const a = (rhoHistory[j] as number) * freeDot(sHistory[j] as Float64Array, direction);
      alphas[j] = a;
      const yj = yHistory[j] as Float64Array;
      for (let i = 0; i < n; i++) if (free[i] === 1) direction[i] = (direction[i] as number) - a * (yj[i] as number);
    }
    if (m > 0) {
      const sLast = sHistory[m - 1] as Float64Array;
      const yLast = yHistory[m - 1] as Float64Array;
      let sy = 0;
      let yy = 0;
      for (let i = 0; i < n; i++) {
        sy += (sLast[i] as number) * (yLast[i] as number);
        yy += (yLast[i] as number) ** 2;
      }
      const gamma = sy / yy;
      for (let i = 0; i < n; i++) direction[i] = (direction[i] as number) * gamma;
    }
    for (let j = 0; j < m; j++) {
      const b = (rhoHistory[j] as number) * freeDot(yHistory[j] as Float64Array, direction);
      const sj = sHistory[j] as Float64Array;
      const coefficient = (alphas[j] as number) - b;
      for (let i = 0; i < n; i++) if (free[i] === 1) direction[i] = (direction[i] as number) + coefficient * (sj[i] as number);
    }
    for (let i = 0; i < n; i++) direction[i] = -(direction[i] as number);

    if (!(freeDot(direction, g) < 0)) {
      // The curvature pairs no longer describe a descent direction: restart from steepest descent.
      sHistory.length = 0;
      yHistory.length = 0;
      rhoHistory.length = 0;
      for (let i = 0; i < n; i++) direction[i] = free[i] === 1 ? -(g[i] as number) : 0;
    }
    let step = 1;
    if (sHistory.length === 0) {
      let norm = 0;
      for (let i = 0; i < n; i++) norm += (direction[i] as number) ** 2;
      step = Math.min(1, 1 / Math.sqrt(norm));
    }

    let accepted = false;
    let fNext = Infinity;
    for (let backtrack = 0; backtrack < maxBacktracks; backtrack++) {
      for (let i = 0; i < n; i++) xNext[i] = (x[i] as number) + step * (direction[i] as number);
      project(xNext);
      let decrease = 0;
      let moved = false;
      for (let i = 0; i < n; i++) {
        const dx = (xNext[i] as number) - (x[i] as number);
        if (dx !== 0) moved = true;
        decrease += (g[i] as number) * dx;
      }
      if (!moved) break;
      fNext = objective(xNext, gNext);
      if (Number.isFinite(fNext) && fNext <= f + armijo * decrease) {
        accepted = true;
        break;
      }
      step *= Number.isFinite(fNext) ? 0.5 : 0.1;
    }
    if (!accepted) {
      return { x, value: f, iterations: iteration, converged: false, message: 'the line search found no decrease' };
    }

    const s = new Float64Array(n);
    const y = new Float64Array(n);
    let sy = 0;
    let yy = 0;
    for (let i = 0; i < n; i++) {
      s[i] = (xNext[i] as number) - (x[i] as number);
      y[i] = (gNext[i] as number) - (g[i] as number);
      sy += (s[i] as number) * (y[i] as number);
      yy += (y[i] as number) ** 2;
    }
    // Keep only pairs with positive curvature, so that the implicit Hessian stays positive definite.
    if (sy > Number.EPSILON * yy) {
      if (sHistory.length === memory) {
        sHistory.shift();
        yHistory.shift();
        rhoHistory.shift();
      }
      sHistory.push(s);
      yHistory.push(y);
      rhoHistory.push(1 / sy);
    }

    const relativeDecrease = (f - fNext) / Math.max(Math.abs(f), Math.abs(fNext), 1);
    [x, xNext] = [xNext, x];
    [g, gNext] = [gNext, g];
    f = fNext;
    if (relativeDecrease <= ftol) {
      return { x, value: f, iterations: iteration + 1, converged: true, message: 'relative decrease below tolerance' };
    }
  }
  return { x, value: f, iterations: maxIterations, converged: false, message: 'the iteration limit was reached' };
}
