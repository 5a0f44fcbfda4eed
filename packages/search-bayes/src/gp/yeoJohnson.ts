/**
 * The Yeo-Johnson power transform (Yeo & Johnson 2000) with its exponent fit by maximum
 * likelihood, as HEBO (Cowen-Rivers et al. 2022) warps objective values before fitting a GP:
 * a stationary GP models a skewed, heavy-tailed objective (Rosenbrock's values span six orders
 * of magnitude) badly, and a monotone warp keeps which trial is best.
 */

/** psi(lambda, y): log-like for lambda near 0 on y >= 0 (near 2 on y < 0), identity at lambda = 1. */
export function yeoJohnson(y: number, lambda: number): number {
  if (y >= 0) return Math.abs(lambda) < 1e-12 ? Math.log1p(y) : ((y + 1) ** lambda - 1) / lambda;
  return Math.abs(lambda - 2) < 1e-12 ? -Math.log1p(-y) : -((1 - y) ** (2 - lambda) - 1) / (2 - lambda);
}

/**
 * The profile log-likelihood of `lambda` when the transformed values are taken as normal:
 * -n/2 log(variance of psi) + (lambda - 1) sum sign(y) log(|y| + 1).
 */
export function yeoJohnsonLogLikelihood(values: ArrayLike<number>, lambda: number): number {
  const n = values.length;
  let mean = 0;
  const transformed = new Float64Array(n);
  let jacobian = 0;
  for (let i = 0; i < n; i++) {
    const y = values[i] as number;
    transformed[i] = yeoJohnson(y, lambda);
    mean += transformed[i] as number;
    jacobian += Math.sign(y) * Math.log1p(Math.abs(y));
  }
  mean /= n;
  let variance = 0;
  for (const t of transformed) variance += (t - mean) ** 2;
  variance /= n;
  if (!(variance > 0) || !Number.isFinite(variance)) return -Infinity;
  return -0.5 * n * Math.log(variance) + (lambda - 1) * jacobian;
}

/**
 * The maximum-likelihood exponent in [-2, 2] (scikit-learn's and HEBO's bracket), by golden-section
 * search on the profile log-likelihood after a coarse grid, to 1e-6.
 */
export function fitYeoJohnsonLambda(values: ArrayLike<number>): number {
  const low = -2;
  const high = 2;
  const gridSize = 40;
  let bestGrid = 0;
  let bestValue = -Infinity;
  for (let k = 0; k <= gridSize; k++) {
    const lambda = low + ((high - low) * k) / gridSize;
    const value = yeoJohnsonLogLikelihood(values, lambda);
    if (value > bestValue) {
      bestValue = value;
      bestGrid = lambda;
    }
  }
  const spacing = (high - low) / gridSize;
  let a = Math.max(low, bestGrid - spacing);
  let b = Math.min(high, bestGrid + spacing);
  const ratio = (Math.sqrt(5) - 1) / 2;
  let c = b - ratio * (b - a);
  let d = a + ratio * (b - a);
  let fc = yeoJohnsonLogLikelihood(values, c);
  let fd = yeoJohnsonLogLikelihood(values, d);
  while (b - a > 1e-6) {
    if (fc > fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - ratio * (b - a);
      fc = yeoJohnsonLogLikelihood(values, c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + ratio * (b - a);
      fd = yeoJohnsonLogLikelihood(values, d);
    }
  }
  return (a + b) / 2;
}
