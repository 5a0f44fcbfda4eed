import { cholesky, choleskyInverse, solveLower, solveLowerTransposed } from './cholesky.js';
import { GaussianProcess, kernelMatrix } from './GaussianProcess.js';
import type { KernelParams, TrainingData } from './GaussianProcess.js';
import { matern52Derivative } from './matern52.js';
import { minimizeBoxedLbfgs } from './minimizeBoxedLbfgs.js';

/** Optuna's floor on the noise variance, which keeps the MAP estimate away from interpolation. */
export const defaultMinimumNoiseVar = 1e-6;

const logTwoPi = Math.log(2 * Math.PI);

/**
 * log p(y | X, params) = -1/2 y^T C^-1 y - 1/2 log det C - n/2 log 2 pi with
 * C = K + noiseVar I; -Infinity when C is not numerically positive definite.
 */
export function logMarginalLikelihood(data: TrainingData, params: KernelParams): number {
  const n = data.y.length;
  const c = kernelMatrix(data, params);
  for (let i = 0; i < n; i++) c[i * n + i] = (c[i * n + i] as number) + params.noiseVar;
  const l = cholesky(c, n);
  if (l === undefined) return -Infinity;
  const u = solveLower(l, n, data.y);
  let quadratic = 0;
  let logDeterminant = 0;
  for (let i = 0; i < n; i++) {
    quadratic += (u[i] as number) ** 2;
    logDeterminant += 2 * Math.log(l[i * n + i] as number);
  }
  return -0.5 * quadratic - 0.5 * logDeterminant - 0.5 * n * logTwoPi;
}

/**
 * A log prior density on one inverse squared lengthscale (constants dropped), as a function of
 * ils, with its derivative over log ils (the coordinate the optimizer moves).
 */
export type LengthscalePrior = (inverseSquaredLengthscale: number) => { readonly logDensity: number; readonly derivative: number };

/** Optuna's: -(0.1 / ils + 0.1 ils), largest at lengthscale 1, within 0.72 of that from 1/3 to 3. */
export const optunaLengthscalePrior: LengthscalePrior = (ils) => ({ logDensity: -(0.1 / ils + 0.1 * ils), derivative: 0.1 / ils - 0.1 * ils });

/**
 * A Gamma(shape, rate) density on the lengthscale l = ils^-1/2: (shape - 1) log l - rate l.
 * Gamma(3, 6) (BoTorch's default before 2024) is largest at l = 1/3 and makes l > 1 costly.
 */
export function gammaLengthscalePrior(shape: number, rate: number): LengthscalePrior {
  return (ils) => {
    const lengthscale = 1 / Math.sqrt(ils);
    // d log l / d log ils = -1/2.
    return { logDensity: (shape - 1) * Math.log(lengthscale) - rate * lengthscale, derivative: -0.5 * (shape - 1 - rate * lengthscale) };
  };
}

/**
 * The log prior on the kernel parameters (constants dropped): `lengthscalePrior` on each inverse
 * squared lengthscale (default Optuna's), and Optuna's Gamma(2, 1) on the kernel scale and
 * Gamma(1.1, 30) on the noise variance.
 */
export function defaultLogPrior(params: KernelParams, lengthscalePrior: LengthscalePrior = optunaLengthscalePrior): number {
  let sum = 0;
  for (const ils of params.inverseSquaredLengthscales) sum += lengthscalePrior(ils).logDensity;
  sum += Math.log(params.kernelScale) - params.kernelScale;
  sum += 0.1 * Math.log(params.noiseVar) - 30 * params.noiseVar;
  return sum;
}

/** How the unconstrained vector the optimizer sees maps to kernel parameters. */
export interface RawParamsMapping {
  readonly minimumNoise: number;
  /** When true the noise is pinned at `minimumNoise` and its raw coordinate is ignored. */
  readonly deterministicObjective: boolean;
}

/** raw = [log ils_1..d, log kernelScale, log(noiseVar - minimumNoise)]. */
export function kernelParamsFromRaw(raw: Float64Array, mapping: RawParamsMapping): KernelParams {
  const dim = raw.length - 2;
  return {
    inverseSquaredLengthscales: Float64Array.from(raw.subarray(0, dim), Math.exp),
    kernelScale: Math.exp(raw[dim] as number),
    noiseVar: mapping.deterministicObjective ? mapping.minimumNoise : Math.exp(raw[dim + 1] as number) + mapping.minimumNoise,
  };
}

/**
 * The negative log posterior -(log marginal likelihood + `defaultLogPrior`) over the raw
 * parameters, with its exact gradient written into `gradient`:
 * d(mll)/d(theta) = 1/2 tr((a a^T - C^-1) dC/d(theta)), a = C^-1 y. Infinity when C is not
 * positive definite (the line search then backs off).
 */
export function negativeLogPosterior(
  data: TrainingData,
  raw: Float64Array,
  mapping: RawParamsMapping,
  gradient: Float64Array,
  lengthscalePrior: LengthscalePrior = optunaLengthscalePrior,
): number {
  const n = data.y.length;
  const dim = data.isCategorical.length;
  const params = kernelParamsFromRaw(raw, mapping);
  const k = kernelMatrix(data, params);
  const c = Float64Array.from(k);
  for (let i = 0; i < n; i++) c[i * n + i] = (c[i * n + i] as number) + params.noiseVar;
  const l = cholesky(c, n);
  if (l === undefined) return Infinity;
  const alpha = solveLowerTransposed(l, n, solveLower(l, n, data.y));
  const inverse = choleskyInverse(l, n);
  let quadratic = 0;
  let logDeterminant = 0;
  for (let i = 0; i < n; i++) {
    quadratic += (data.y[i] as number) * (alpha[i] as number);
    logDeterminant += 2 * Math.log(l[i * n + i] as number);
  }
  const mll = -0.5 * quadratic - 0.5 * logDeterminant - 0.5 * n * logTwoPi;

  // W = a a^T - C^-1; every dC/d(theta) is symmetric, so sum over i > j twice plus the diagonal.
  const ils = params.inverseSquaredLengthscales;
  const lengthscaleGradient = new Float64Array(dim);
  let scaleGradient = 0;
  let traceW = 0;
  for (let i = 0; i < n; i++) {
    const ai = alpha[i] as number;
    traceW += ai * ai - (inverse[i * n + i] as number);
    scaleGradient += 0.5 * (ai * ai - (inverse[i * n + i] as number)) * params.kernelScale;
    for (let j = 0; j < i; j++) {
      const w = ai * (alpha[j] as number) - (inverse[i * n + j] as number);
      scaleGradient += w * (k[i * n + j] as number);
      // d C_ij / d log ils_k = kernelScale * matern'(d2_ij) * ils_k * delta_ijk.
      let d2 = 0;
      for (let q = 0; q < dim; q++) {
        const diff = (data.x[i * dim + q] as number) - (data.x[j * dim + q] as number);
        const delta = data.isCategorical[q] === true ? (diff !== 0 ? 1 : 0) : diff * diff;
        d2 += (ils[q] as number) * delta;
      }
      const factor = w * params.kernelScale * matern52Derivative(d2);
      if (factor === 0) continue;
      for (let q = 0; q < dim; q++) {
        const diff = (data.x[i * dim + q] as number) - (data.x[j * dim + q] as number);
        const delta = data.isCategorical[q] === true ? (diff !== 0 ? 1 : 0) : diff * diff;
        lengthscaleGradient[q] = (lengthscaleGradient[q] as number) + factor * (ils[q] as number) * delta;
      }
    }
  }

  const logPrior = defaultLogPrior(params, lengthscalePrior);
  for (let q = 0; q < dim; q++) gradient[q] = -((lengthscaleGradient[q] as number) + lengthscalePrior(ils[q] as number).derivative);
  gradient[dim] = -(scaleGradient + 1 - params.kernelScale);
  if (mapping.deterministicObjective) {
    gradient[dim + 1] = 0;
  } else {
    const excessNoise = params.noiseVar - mapping.minimumNoise;
    gradient[dim + 1] = -(0.5 * traceW * excessNoise + (0.1 / params.noiseVar - 30) * excessNoise);
  }
  return -(mll + logPrior);
}

export interface FitKernelParamsOptions {
  /** Default `defaultMinimumNoiseVar` (1e-6). */
  readonly minimumNoise?: number;
  /** Pin the noise at `minimumNoise` (Optuna's `deterministic_objective`). Default false. */
  readonly deterministicObjective?: boolean;
  /** Start from these (the previous fit, for warm starting); default all ones. */
  readonly initial?: KernelParams;
  /** Projected-gradient tolerance of the optimizer; default 1e-2, as Optuna (tighter is unstable). */
  readonly gradientTolerance?: number;
  /** Default `optunaLengthscalePrior`. */
  readonly lengthscalePrior?: LengthscalePrior;
}

function defaultKernelParams(dim: number): KernelParams {
  return { inverseSquaredLengthscales: new Float64Array(dim).fill(1), kernelScale: 1, noiseVar: 1 };
}

/**
 * Maximum a posteriori kernel parameters for `data` (maximizing log marginal likelihood + log
 * prior with L-BFGS over log-transformed parameters), returned as a ready GaussianProcess.
 * Starts from `initial` when given and, if that fit fails, from the defaults (ones), as Optuna
 * does; when both fail, the defaults are used as they are.
 */
export function fitKernelParams(data: TrainingData, options: FitKernelParamsOptions = {}): GaussianProcess {
  const dim = data.isCategorical.length;
  const mapping: RawParamsMapping = {
    minimumNoise: options.minimumNoise ?? defaultMinimumNoiseVar,
    deterministicObjective: options.deterministicObjective ?? false,
  };
  const lengthscalePrior = options.lengthscalePrior ?? optunaLengthscalePrior;
  const defaults = defaultKernelParams(dim);
  const starts = options.initial === undefined ? [defaults] : [options.initial, defaults];
  for (const start of starts) {
    const raw = new Float64Array(dim + 2);
    for (let q = 0; q < dim; q++) raw[q] = Math.log(start.inverseSquaredLengthscales[q] as number);
    raw[dim] = Math.log(start.kernelScale);
    // 0.99 keeps the starting noise strictly above the floor, whose log would be -Infinity.
    raw[dim + 1] = Math.log(Math.max(start.noiseVar - 0.99 * mapping.minimumNoise, 0.01 * mapping.minimumNoise));
    const result = minimizeBoxedLbfgs((x, gradient) => negativeLogPosterior(data, x, mapping, gradient, lengthscalePrior), raw, {
      gradientTolerance: options.gradientTolerance ?? 1e-2,
    });
    // A line search that stalls near the optimum still leaves a usable point; only a non-finite
    // objective counts as a failed fit.
    if (!Number.isFinite(result.value)) continue;
    try {
      return new GaussianProcess(data, kernelParamsFromRaw(result.x, mapping));
    } catch {
      continue;
    }
  }
  return new GaussianProcess(data, defaults);
}
