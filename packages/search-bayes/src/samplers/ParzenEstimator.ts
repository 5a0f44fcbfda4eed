import type { ParameterDistribution, RelativeSearchSpace, SeededRandom } from '@open-autoglm/core';
import { logGaussMass, truncatedNormalQuantile } from '../math/truncatedNormal.js';

/** How TPE builds its Parzen estimators (Optuna's defaults in brackets). */
export interface ParzenEstimatorParameters {
  /** Weight of the prior component, a wide kernel over the whole range [1]. */
  readonly priorWeight: number;
  /** Keep kernels from getting narrower than range / min(100, components) [true]. */
  readonly considerMagicClip: boolean;
  /** Let the outermost kernels reach the bounds (univariate bandwidths) [false]. */
  readonly considerEndpoints: boolean;
  /** Weights of `n` observations, oldest first [Optuna's default_weights]. */
  readonly weights: (n: number) => ArrayLike<number>;
  /** One bandwidth per dimension from Scott's rule (joint sampling) instead of neighbour gaps. */
  readonly multivariate: boolean;
  /**
   * Score continuous parameters with each kernel's true density (with its 1/sigma factor), as
   * Optuna >= 3.5 does [false here, the estimator's own default; TPESampler passes true].
   * Optuna 3.1 leaves that factor out, which weighs each kernel by its bandwidth and favours wide,
   * exploratory kernels: with univariate kernels that measured better (200 trials, seeds 101-140:
   * Ackley-10 median 13.30 without the factor, 15.07 with it), with joint neighbour-gap kernels
   * the true density does as well or better (see TPESampler).
   */
  readonly exactDensity?: boolean;
  /**
   * Kernel widths of a multivariate estimator: one per dimension by Scott's rule, 0.2 range
   * n^(-1/(d+4)) (Optuna 3.1 to 4.x) ['scott'], or per kernel and dimension the univariate rule's
   * neighbour gaps (Optuna 5.0, 'neighbourGaps'), which stay narrow where the good trials crowd.
   */
  readonly multivariateBandwidth?: 'scott' | 'neighbourGaps';
  /**
   * Count the prior's centre among the neighbours whose gaps set the kernel widths [true, as
   * Optuna 3.1]. Optuna >= 4.6 leaves it out (`false`): a kernel next to the middle of the range
   * then takes its width from the observations alone rather than from the prior's position.
   */
  readonly priorInNeighbourGaps?: boolean;
}

interface NumericalKernels {
  readonly kind: 'numerical';
  readonly distribution: ParameterDistribution & { kind: 'int' | 'float' };
  readonly logScale: boolean;
  readonly low: number;
  readonly high: number;
  /** The grid step for stepped floats and (non-log) integers. */
  readonly q: number | undefined;
  readonly mus: Float64Array;
  readonly sigmas: Float64Array;
  /** log of each kernel's mass inside [low, high]. */
  readonly logMasses: Float64Array;
  /** log sigma of each kernel with `exactDensity`, zeros as in Optuna otherwise. */
  readonly logScales: Float64Array;
}

interface CategoricalKernels {
  readonly kind: 'categorical';
  /** Row per component: the probability of each choice. */
  readonly probabilities: Float64Array[];
}

const sigma0Magnitude = 0.2;
const halfLogTwoPi = 0.5 * Math.log(2 * Math.PI);
const eps = 1e-12;

/**
 * A mixture of one kernel per observation plus a prior (Optuna's `_ParzenEstimator`), over the
 * parameters of a search space, in Optuna's internal representation (categorical choices as
 * indices). Numerical parameters use truncated normals (in log space for log scales; stepped
 * ones as the mass of their grid cell), categorical ones a smoothed one-hot distribution.
 */
export class ParzenEstimator {
  private readonly componentWeights: Float64Array;
  private readonly logComponentWeights: Float64Array;
  private readonly kernels = new Map<string, NumericalKernels | CategoricalKernels>();

  /**
   * `observations` holds one array per parameter, all of one length (NaN never appears: callers
   * drop trials without the parameter). `predeterminedWeights` replaces the weights function
   * (multi-objective TPE weighs by hypervolume contribution).
   */
  constructor(
    observations: Readonly<Record<string, Float64Array>>,
    private readonly searchSpace: RelativeSearchSpace,
    parameters: ParzenEstimatorParameters,
    predeterminedWeights?: ArrayLike<number>,
  ) {
    const names = Object.keys(searchSpace);
    const n = names.length === 0 ? 0 : (observations[names[0] as string]?.length ?? 0);
    const rawWeights = predeterminedWeights ?? parameters.weights(n);
    const weights = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      const w = rawWeights[i] ?? Number.NaN;
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`TPE weights must be finite and non-negative; weight ${i} of ${n} is ${w}`);
      weights[i] = w;
    }
    weights[n] = parameters.priorWeight;
    const total = weights.reduce((sum, w) => sum + w, 0);
    for (let i = 0; i <= n; i++) weights[i] = (weights[i] ?? 0) / total;
    this.componentWeights = weights;
    this.logComponentWeights = weights.map(Math.log);

    const sigma0 = sigma0Magnitude * Math.max(n, 1) ** (-1 / (names.length + 4));
    for (const name of names) {
      const distribution = searchSpace[name] as ParameterDistribution;
      const values = observations[name] ?? new Float64Array(0);
      this.kernels.set(
        name,
        distribution.kind === 'categorical'
          ? categoricalKernels(values, distribution.choices.length, parameters.priorWeight)
          : numericalKernels(values, distribution, parameters, sigma0),
      );
    }
  }

  /** `size` joint samples (component first, then each parameter from that component), internal representation. */
  sample(random: SeededRandom, size: number): Record<string, Float64Array> {
    const active = new Int32Array(size);
    for (let s = 0; s < size; s++) active[s] = random.nextWeightedIndex(this.componentWeights);
    const samples: Record<string, Float64Array> = {};
    for (const [name, kernels] of this.kernels) {
      const out = new Float64Array(size);
      for (let s = 0; s < size; s++) {
        const component = active[s] ?? 0;
        if (kernels.kind === 'categorical') {
          out[s] = random.nextWeightedIndex(kernels.probabilities[component] ?? []);
        } else {
          const mu = kernels.mus[component] ?? 0;
          const sigma = kernels.sigmas[component] ?? 1;
          const z = truncatedNormalQuantile(random.nextFloat(), (kernels.low - mu) / sigma, (kernels.high - mu) / sigma);
          out[s] = fromKernelSpace(kernels, mu + sigma * z);
        }
      }
      samples[name] = out;
    }
    return samples;
  }

  /** The log density (log mass for discrete parameters) of each joint sample under the mixture. */
  logPdf(samples: Readonly<Record<string, Float64Array>>): Float64Array {
    const names = [...this.kernels.keys()];
    const size = samples[names[0] ?? '']?.length ?? 0;
    const nComponents = this.componentWeights.length;
    const result = new Float64Array(size);
    const perComponent = new Float64Array(nComponents);
    for (let s = 0; s < size; s++) {
      perComponent.set(this.logComponentWeights);
      for (const name of names) {
        const kernels = this.kernels.get(name) as NumericalKernels | CategoricalKernels;
        const value = samples[name]?.[s] ?? Number.NaN;
        if (kernels.kind === 'categorical') {
          for (let c = 0; c < nComponents; c++) perComponent[c] = (perComponent[c] ?? 0) + Math.log(kernels.probabilities[c]?.[value] ?? 0);
          continue;
        }
        const x = kernels.logScale ? Math.log(value) : value;
        for (let c = 0; c < nComponents; c++) {
          const mu = kernels.mus[c] ?? 0;
          const sigma = kernels.sigmas[c] ?? 1;
          let logDensity: number;
          if (kernels.q === undefined) {
            const z = (x - mu) / sigma;
            logDensity = x < kernels.low || x > kernels.high ? -Infinity : -0.5 * z * z - halfLogTwoPi - (kernels.logScales[c] ?? 0) - (kernels.logMasses[c] ?? 0);
          } else {
            const upper = Math.min(x + kernels.q / 2, kernels.high);
            const lower = Math.max(x - kernels.q / 2, kernels.low);
            logDensity = logGaussMass((lower - mu) / sigma, (upper - mu) / sigma) - (kernels.logMasses[c] ?? 0);
          }
          perComponent[c] = (perComponent[c] ?? 0) + logDensity;
        }
      }
      result[s] = logSumExp(perComponent);
    }
    return result;
  }
}

function logSumExp(values: Float64Array): number {
  let top = -Infinity;
  for (const value of values) if (value > top) top = value;
  if (top === -Infinity) return -Infinity;
  let sum = 0;
  for (const value of values) sum += Math.exp(value - top);
  return top + Math.log(sum);
}

function categoricalKernels(values: Float64Array, nChoices: number, priorWeight: number): CategoricalKernels {
  const n = values.length;
  const fill = priorWeight / (n + 1);
  const probabilities: Float64Array[] = [];
  for (let i = 0; i <= n; i++) {
    const row = new Float64Array(nChoices).fill(fill);
    if (i < n) row[values[i] ?? 0] = (row[values[i] ?? 0] ?? 0) + 1;
    const total = row.reduce((sum, p) => sum + p, 0);
    probabilities.push(row.map((p) => p / total));
  }
  return { kind: 'categorical', probabilities };
}

function numericalKernels(
  values: Float64Array,
  distribution: ParameterDistribution & { kind: 'int' | 'float' },
  parameters: ParzenEstimatorParameters,
  sigma0: number,
): NumericalKernels {
  const logScale = distribution.log === true;
  let low: number;
  let high: number;
  let q: number | undefined;
  if (distribution.kind === 'float') {
    if (logScale) [low, high] = [Math.log(distribution.low), Math.log(distribution.high)];
    else if (distribution.step !== undefined) {
      q = distribution.step;
      [low, high] = [distribution.low - 0.5 * q, distribution.high + 0.5 * q];
    } else [low, high] = [distribution.low, distribution.high];
  } else if (logScale) {
    [low, high] = [Math.log(distribution.low - 0.5), Math.log(distribution.high + 0.5)];
  } else {
    q = distribution.step ?? 1;
    [low, high] = [distribution.low - 0.5 * q, distribution.high + 0.5 * q];
  }

  const n = values.length;
  const mus = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) mus[i] = logScale ? Math.log(values[i] ?? 0) : (values[i] ?? 0);
  mus[n] = 0.5 * (low + high);
  const sigmas = new Float64Array(n + 1);
  if (parameters.multivariate && parameters.multivariateBandwidth !== 'neighbourGaps') {
    sigmas.fill(sigma0 * (high - low));
  } else {
    // Each kernel as wide as the larger gap to its sorted neighbours (the bounds at the ends).
    const neighbours = parameters.priorInNeighbourGaps === false ? n : n + 1;
    const order = [...mus.subarray(0, neighbours).keys()].sort((a, b) => (mus[a] ?? 0) - (mus[b] ?? 0));
    const sorted = [low, ...order.map((i) => mus[i] ?? 0), high];
    const sortedSigmas = order.map((_, k) => Math.max((sorted[k + 1] ?? 0) - (sorted[k] ?? 0), (sorted[k + 2] ?? 0) - (sorted[k + 1] ?? 0)));
    if (!parameters.considerEndpoints && sorted.length >= 4) {
      sortedSigmas[0] = (sorted[2] ?? 0) - (sorted[1] ?? 0);
      sortedSigmas[sortedSigmas.length - 1] = (sorted[sorted.length - 2] ?? 0) - (sorted[sorted.length - 3] ?? 0);
    }
    order.forEach((i, k) => (sigmas[i] = sortedSigmas[k] ?? 0));
  }
  const maxSigma = high - low;
  const minSigma = parameters.considerMagicClip ? (high - low) / Math.min(100, 1 + (n + 1)) : eps;
  for (let i = 0; i <= n; i++) sigmas[i] = Math.min(maxSigma, Math.max(minSigma, sigmas[i] ?? 0));
  sigmas[n] = high - low; // the prior
  const logMasses = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) logMasses[i] = logGaussMass((low - (mus[i] ?? 0)) / (sigmas[i] ?? 1), (high - (mus[i] ?? 0)) / (sigmas[i] ?? 1));
  return { kind: 'numerical', distribution, logScale, low, high, q, mus, sigmas, logMasses, logScales: parameters.exactDensity === true ? sigmas.map(Math.log) : new Float64Array(n + 1) };
}

/** From the kernels' space back to a value of the distribution (exp for log scales, snapped to the grid). */
function fromKernelSpace(kernels: NumericalKernels, x: number): number {
  const { distribution } = kernels;
  if (distribution.kind === 'float') {
    if (kernels.logScale) return Math.min(distribution.high, Math.max(distribution.low, Math.exp(x)));
    if (distribution.step === undefined) return x;
    return Math.min(distribution.high, Math.max(distribution.low, Math.round((x - distribution.low) / distribution.step) * distribution.step + distribution.low));
  }
  if (kernels.logScale) return Math.min(distribution.high, Math.max(distribution.low, Math.round(Math.exp(x))));
  const step = distribution.step ?? 1;
  return Math.min(distribution.high, Math.max(distribution.low, Math.round((x - distribution.low) / step) * step + distribution.low));
}
