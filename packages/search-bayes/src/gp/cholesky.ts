/**
 * Dense Cholesky factorization and triangular solves in float64, on flat row-major n x n arrays.
 */

/**
 * The lower-triangular L with L L^T = a (the upper triangle of the result is zero), or undefined
 * when `a` is not numerically positive definite.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let diagonal = a[j * n + j] as number;
    for (let k = 0; k < j; k++) {
      const v = l[j * n + k] as number;
      diagonal -= v * v;
    }
    if (!(diagonal > 0) || !Number.isFinite(diagonal)) return undefined;
    const ljj = Math.sqrt(diagonal);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let sum = a[i * n + j] as number;
      for (let k = 0; k < j; k++) sum -= (l[i * n + k] as number) * (l[j * n + k] as number);
      l[i * n + j] = sum / ljj;
    }
  }
  return l;
}

/** Solves L x = b for lower-triangular L; writes x into `out` (may alias `b`). */
export function solveLower(l: Float64Array, n: number, b: Float64Array, out: Float64Array = new Float64Array(n)): Float64Array {
  for (let i = 0; i < n; i++) {
    let sum = b[i] as number;
    const row = i * n;
    for (let k = 0; k < i; k++) sum -= (l[row + k] as number) * (out[k] as number);
    out[i] = sum / (l[row + i] as number);
  }
  return out;
}

/** Solves L^T x = b for lower-triangular L; writes x into `out` (may alias `b`). */
export function solveLowerTransposed(l: Float64Array, n: number, b: Float64Array, out: Float64Array = new Float64Array(n)): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    let sum = b[i] as number;
    for (let k = i + 1; k < n; k++) sum -= (l[k * n + i] as number) * (out[k] as number);
    out[i] = sum / (l[i * n + i] as number);
  }
  return out;
}

/** (L L^T)^-1 from the Cholesky factor L, as a full symmetric n x n matrix. */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  const inverse = new Float64Array(n * n);
  const column = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    column.fill(0);
    column[j] = 1;
    solveLower(l, n, column, column);
    solveLowerTransposed(l, n, column, column);
    for (let i = 0; i < n; i++) inverse[i * n + j] = column[i] as number;
  }
  return inverse;
}
