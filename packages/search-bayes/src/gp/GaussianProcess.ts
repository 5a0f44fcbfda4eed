import { cholesky, solveLower, solveLowerTransposed } from './cholesky.js';
import { matern52, matern52Derivative, scaledSquaredDistance } from './matern52.js';

/** Hyperparameters of the Matern 5/2 ARD kernel plus observation noise (Optuna's parametrization). */
export interface KernelParams {
  /** 1 / lengthscale^2 per input dimension. */
  readonly inverseSquaredLengthscales: Float64Array;
  /** Prior variance of the latent function: k(x, x). */
  readonly kernelScale: number;
  /** Variance of the observation noise added to the kernel matrix's diagonal. */
  readonly noiseVar: number;
}

/** Posterior mean and variance of the latent function at one point. */
export interface Posterior {
  readonly mean: number;
  readonly variance: number;
}

/**
 * Fixed training data, its input coordinates (categorical dimensions hold choice indices) and
 * the flags saying which dimensions are categorical.
 */
export interface TrainingData {
  /** n x dim, row-major. */
  readonly x: Float64Array;
  /** n targets. */
  readonly y: Float64Array;
  readonly isCategorical: readonly boolean[];
}

/** The kernel matrix K(X, X) = kernelScale * matern52(d2) (no noise) of `data` under `params`. */
export function kernelMatrix(data: TrainingData, params: KernelParams): Float64Array {
  const n = data.y.length;
  const dim = data.isCategorical.length;
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    k[i * n + i] = params.kernelScale;
    for (let j = 0; j < i; j++) {
      const d2 = scaledSquaredDistance(data.x, i * dim, data.x, j * dim, params.inverseSquaredLengthscales, data.isCategorical);
      const v = params.kernelScale * matern52(d2);
      k[i * n + j] = v;
      k[j * n + i] = v;
    }
  }
  return k;
}

/**
 * A Gaussian-process regressor with a Matern 5/2 ARD kernel: the Cholesky factor of
 * K + noiseVar I and the weights (K + noiseVar I)^-1 y are computed once, then the posterior is
 * evaluated at any point, with its gradient over the continuous coordinates.
 */
export class GaussianProcess {
  readonly data: TrainingData;
  readonly params: KernelParams;
  private readonly n: number;
  private readonly dim: number;
  private readonly choleskyFactor: Float64Array;
  private readonly weights: Float64Array;
  // Scratch buffers reused by every posterior evaluation (the class is not re-entrant).
  private readonly kernelColumn: Float64Array;
  private readonly kernelDerivative: Float64Array;
  private readonly solved: Float64Array;

  /** Throws a RangeError when K + noiseVar I is not numerically positive definite. */
  constructor(data: TrainingData, params: KernelParams) {
    this.data = data;
    this.params = params;
    this.n = data.y.length;
    this.dim = data.isCategorical.length;
    if (data.x.length !== this.n * this.dim || params.inverseSquaredLengthscales.length !== this.dim) {
      throw new RangeError(`GaussianProcess: expected ${this.n} x ${this.dim} inputs and ${this.dim} lengthscales`);
    }
    const c = kernelMatrix(data, params);
    for (let i = 0; i < this.n; i++) c[i * this.n + i] = (c[i * this.n + i] as number) + params.noiseVar;
    const l = cholesky(c, this.n);
    if (l === undefined) throw new RangeError('GaussianProcess: the kernel matrix plus noise is not positive definite');
    this.choleskyFactor = l;
    this.weights = solveLowerTransposed(l, this.n, solveLower(l, this.n, data.y));
    this.kernelColumn = new Float64Array(this.n);
    this.kernelDerivative = new Float64Array(this.n);
    this.solved = new Float64Array(this.n);
  }

  /** Number of training points. */
  get size(): number {
    return this.n;
  }

  /** Posterior of the latent function at `x` (dim coordinates); the variance is clamped at 0. */
  posterior(x: Float64Array): Posterior {
    const { n, dim } = this;
    const ils = this.params.inverseSquaredLengthscales;
    let mean = 0;
    for (let i = 0; i < n; i++) {
      const kv = this.params.kernelScale * matern52(scaledSquaredDistance(x, 0, this.data.x, i * dim, ils, this.data.isCategorical));
      this.kernelColumn[i] = kv;
      mean += kv * (this.weights[i] as number);
    }
    solveLower(this.choleskyFactor, n, this.kernelColumn, this.solved);
    let explained = 0;
    for (let i = 0; i < n; i++) explained += (this.solved[i] as number) ** 2;
    return { mean, variance: Math.max(0, this.params.kernelScale - explained) };
  }

  /**
   * Posterior at `x` and the gradients of its mean and variance over every coordinate;
   * categorical coordinates get 0 (they are searched over their choices, not by gradient).
   */
  posteriorWithGradient(x: Float64Array, meanGradient: Float64Array, varianceGradient: Float64Array): Posterior {
    const { n, dim } = this;
    const ils = this.params.inverseSquaredLengthscales;
    const isCategorical = this.data.isCategorical;
    let mean = 0;
    for (let i = 0; i < n; i++) {
      const d2 = scaledSquaredDistance(x, 0, this.data.x, i * dim, ils, isCategorical);
      const kv = this.params.kernelScale * matern52(d2);
      this.kernelColumn[i] = kv;
      this.kernelDerivative[i] = this.params.kernelScale * matern52Derivative(d2);
      mean += kv * (this.weights[i] as number);
    }
    solveLower(this.choleskyFactor, n, this.kernelColumn, this.solved);
    let explained = 0;
    for (let i = 0; i < n; i++) explained += (this.solved[i] as number) ** 2;
    const rawVariance = this.params.kernelScale - explained;
    // (K + noise I)^-1 k(x), for d var / dx = -2 k'(x)^T (K + noise I)^-1 k(x).
    solveLowerTransposed(this.choleskyFactor, n, this.solved, this.solved);
    meanGradient.fill(0);
    varianceGradient.fill(0);
    for (let i = 0; i < n; i++) {
      const dk = this.kernelDerivative[i] as number;
      const meanWeight = dk * (this.weights[i] as number);
      const varianceWeight = -2 * dk * (this.solved[i] as number);
      const row = i * dim;
      for (let k = 0; k < dim; k++) {
        if (isCategorical[k] === true) continue;
        // d(d2)/dx_k = 2 ils_k (x_k - X_ik).
        const dd2 = 2 * (ils[k] as number) * ((x[k] as number) - (this.data.x[row + k] as number));
        meanGradient[k] = (meanGradient[k] as number) + meanWeight * dd2;
        varianceGradient[k] = (varianceGradient[k] as number) + varianceWeight * dd2;
      }
    }
    if (rawVariance <= 0) varianceGradient.fill(0);
    return { mean, variance: Math.max(0, rawVariance) };
  }
}
