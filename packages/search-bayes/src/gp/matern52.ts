/**
 * The Matern 5/2 correlation as a function of the squared scaled distance d2 = sum_i (dx_i/l_i)^2:
 * k(d2) = (1 + sqrt(5 d2) + 5/3 d2) exp(-sqrt(5 d2)). Taking d2 (not d) as the argument keeps the
 * derivative finite at d2 = 0, where the kernel matrix has its diagonal.
 */
export function matern52(squaredDistance: number): number {
  const sqrt5d = Math.sqrt(5 * squaredDistance);
  return Math.exp(-sqrt5d) * ((5 / 3) * squaredDistance + sqrt5d + 1);
}

/** dk/d(d2) = -5/6 (1 + sqrt(5 d2)) exp(-sqrt(5 d2)); equals -5/6 at d2 = 0. */
export function matern52Derivative(squaredDistance: number): number {
  const sqrt5d = Math.sqrt(5 * squaredDistance);
  return (-5 / 6) * (sqrt5d + 1) * Math.exp(-sqrt5d);
}

/**
 * Squared distance between rows `a` and `b` (offsets into flat row-major arrays of `dim` columns),
 * each coordinate weighted by its inverse squared lengthscale. A categorical coordinate holds a
 * choice index and contributes its weight when the choices differ (Hamming distance), as in
 * Optuna's GP.
 */
export function scaledSquaredDistance(
  a: Float64Array,
  aOffset: number,
  b: Float64Array,
  bOffset: number,
  inverseSquaredLengthscales: Float64Array,
  isCategorical: readonly boolean[],
): number {
  let sum = 0;
  const dim = inverseSquaredLengthscales.length;
  for (let k = 0; k < dim; k++) {
    const diff = (a[aOffset + k] as number) - (b[bOffset + k] as number);
    const weight = inverseSquaredLengthscales[k] as number;
    sum += isCategorical[k] === true ? (diff !== 0 ? weight : 0) : weight * diff * diff;
  }
  return sum;
}
