import { RandomSampler, SeededRandom, UnsupportedOperationError } from '@open-autoglm/core';
import type { FrozenTrial, ParameterDistribution, ParameterValue, RelativeSearchSpace, Sampler, Study, TrialParams } from '@open-autoglm/core';
import { intersectionSearchSpace } from '../samplers/intersectionSearchSpace.js';
import { LatinHypercubeDesign } from './LatinHypercubeDesign.js';
import { fitKernelParams, gammaLengthscalePrior, optunaLengthscalePrior } from './fitKernelParams.js';
import type { LengthscalePrior } from './fitKernelParams.js';
import type { GaussianProcess, KernelParams } from './GaussianProcess.js';
import { LogEiAcquisition } from './LogEiAcquisition.js';
import type { ConstraintModel, ObjectiveModel } from './LogEiAcquisition.js';
import { NormalizedSearchSpace } from './NormalizedSearchSpace.js';
import { optimizeAcquisition } from './optimizeAcquisition.js';
import { fitYeoJohnsonLambda, yeoJohnson } from './yeoJohnson.js';

export interface GPSamplerOptions {
  readonly seed?: number;
  /** Trials drawn as `startupDesign` says before the GP takes over; default 10 (Optuna's). */
  readonly startupTrials?: number;
  /**
   * How the start-up trials are drawn: 'random' by `independentSampler` (Optuna's way);
   * 'latinHypercube' as a Latin hypercube of `startupTrials` points, each parameter's values one
   * per equal stratum of its range (single-valued parameters, and parameters outside the GP's
   * joint space after the start-up, still go to `independentSampler`). Default 'latinHypercube',
   * or 'random' when an `independentSampler` is given (space-filling start-ups are the common
   * practice: Ax and SMAC start from Sobol points).
   * Measured, it is about neutral: seeds 1-10 / 101-120 / 201-220, 50 trials, with the worst value
   * as prior mean, random -> latinHypercube: median best of Hartmann-6 -3.2627 / -3.3224 / -3.3224
   * -> -3.3224 / -3.3224 / -3.3224 (on seeds 1-10 seven runs of ten in the global basin instead of
   * five; over all 50 seeds 32 instead of 35), Ackley-10 8.83 / 7.54 / 7.88 -> 7.53 / 7.32 / 8.25,
   * Rosenbrock-5 192 / 164 / 128 -> 213 / 150 / 157 (README).
   */
  readonly startupDesign?: 'random' | 'latinHypercube';
  /** The objective has no noise: pin the GP's noise variance at its floor. Default false. */
  readonly deterministicObjective?: boolean;
  /**
   * Floor of the GP's noise variance, in units of the standardized objective; default 1e-8
   * (Optuna: 1e-6). The noise is still fitted above it, so a noisy objective keeps its noise; but
   * with a 1e-6 floor (a standard deviation of 1e-3 standardized values) the GP cannot tell apart
   * points near the optimum that differ by less than that, and the incumbent is never polished.
   * On seeds 1-10, 50 trials, 1e-8 moved the median best of Branin from 0.398000 to 0.397888
   * (global minimum 0.397887); on seeds 101-120 from 0.397917 to 0.397893, Hartmann-6 from
   * -3.3199 to -3.3210.
   */
  readonly minimumNoise?: number;
  /** Draws the start-up trials and parameters outside the joint space; default random, same seed. */
  readonly independentSampler?: Sampler;
  /** Random samples scored before the local searches; default 2048 (Optuna's). */
  readonly preliminarySamples?: number;
  /** Local searches of the acquisition per trial; default 10 (Optuna's). */
  readonly localSearches?: number;
  /** Convergence tolerance of the local searches; default 1e-4 (Optuna's). */
  readonly acquisitionTolerance?: number;
  /**
   * How objective values are transformed before the GP sees them: 'none' standardizes them
   * (Optuna's way); 'yeoJohnson' standardizes, applies the maximum-likelihood Yeo-Johnson power
   * transform and standardizes again (HEBO's output warping), so skewed, heavy-tailed objectives
   * do not leave the GP fitting a few outliers. Default 'yeoJohnson': on seeds 101-120 (not the
   * benchmark's), 50 trials, it lowered the median best of Rosenbrock-5 from 974 to 246, Ackley-10
   * from 15.10 to 12.15, Hartmann-6 from -3.3175 to -3.3199 and Branin from 0.397955 to 0.397917.
   */
  readonly outputWarping?: 'none' | 'yeoJohnson';
  /**
   * The prior on each lengthscale (inputs scaled to [0, 1]): 'gamma' (default), Gamma(3, 6) on the
   * lengthscale (BoTorch's former default), which keeps lengthscales near 1/3, so the GP trusts
   * its data less far away; 'optuna', Optuna's, most likely at lengthscale 1 and tolerant of long
   * ones. With the worst value as prior mean and a Latin hypercube start-up, 50 trials, median best
   * of seeds 1-10 / 101-120 / 201-220, 'optuna' -> 'gamma': Ackley-10 7.53 / 7.32 / 8.25 -> 4.70 /
   * 5.14 / 4.71, Rosenbrock-5 213 / 150 / 157 -> 108 / 115 / 93, Hartmann-6 -3.3224 -> -3.3224 on
   * all three (global basin on 37 runs of 50 instead of 32), Branin 0.397892 / 0.397890 / 0.397889
   * -> 0.397890 / 0.397890 / 0.397891. With Optuna's average prior mean 'gamma' explored too much:
   * Rosenbrock-5 332 / 236 -> 655 / 514 on seeds 1-10 / 101-120 (README).
   */
  readonly lengthscalePrior?: 'optuna' | 'gamma';
  /**
   * The GP's constant prior mean, which it predicts far from every observation: 'average', the
   * mean of the (standardized) values, as Optuna; 'worst', the worst value observed, so that the
   * unexplored corners of the space are not expected to be average, and expected improvement
   * spends fewer trials there (De Ath, Fieldsend & Everson 2020, "What do you mean? The role of
   * the mean function in Bayesian optimisation": the worst observed value did best of eight means
   * on synthetic problems of 5 or more dimensions; no mean won clearly on their real-world ones).
   * Default 'worst'. Seeds 1-10 / 101-120 / 201-220, 50 trials, random start-up, 'average' ->
   * 'worst': median best of Hartmann-6 -3.2030 / -3.3213 / -3.3210 -> -3.2627 / -3.3224 /
   * -3.3224, Rosenbrock-5 332 / 236 / 170 -> 192 / 164 / 128, Ackley-10 12.87 / 11.82 /
   * 14.47 -> 8.83 / 7.54 / 7.88, Branin 0.397888 / 0.397893 / 0.397889 -> 0.397889 / 0.397889 /
   * 0.397892 (global minimum 0.397887).
   */
  readonly priorMean?: 'average' | 'worst';
}

/**
 * Gaussian-process Bayesian optimization (Optuna's `GPSampler`) for one objective: start-up trials
 * from a Latin hypercube (`startupDesign`; Optuna: random); values standardized and, unlike
 * Optuna, power-warped (`outputWarping`) and shifted so that the GP's prior mean is the worst
 * value seen (`priorMean`; Optuna: the average); a Matern 5/2 ARD kernel whose
 * hyperparameters are the MAP estimate under Optuna's priors but a Gamma(3, 6) lengthscale prior
 * (`lengthscalePrior`; warm-started from the previous
 * trial's), log expected improvement over the best observed value, and, when
 * trials carry constraint values, one more GP per constraint whose log probability of
 * feasibility is added to log EI. Only complete trials inform it; the joint space is the
 * parameters every complete trial has with the same distribution.
 */
export class GPSampler implements Sampler {
  private readonly random: SeededRandom;
  private readonly startupTrials: number;
  private readonly deterministicObjective: boolean;
  private readonly minimumNoise: number;
  private readonly independentSampler: Sampler;
  private readonly preliminarySamples: number;
  private readonly localSearches: number;
  private readonly acquisitionTolerance: number;
  private readonly outputWarping: 'none' | 'yeoJohnson';
  private readonly lengthscalePrior: LengthscalePrior;
  private readonly priorMean: 'average' | 'worst';
  private readonly startupDesign: LatinHypercubeDesign | undefined;
  // Previous fits, to warm-start the next ones; dropped when the joint space changes.
  private cachedSpaceKey = '';
  private cachedObjectiveParams: KernelParams | undefined;
  private cachedConstraintParams: (KernelParams | undefined)[] = [];

  constructor(options: GPSamplerOptions = {}) {
    this.random = options.seed === undefined ? SeededRandom.fromEntropy() : new SeededRandom(options.seed);
    this.startupTrials = options.startupTrials ?? 10;
    this.deterministicObjective = options.deterministicObjective ?? false;
    this.minimumNoise = options.minimumNoise ?? 1e-8;
    this.independentSampler = options.independentSampler ?? new RandomSampler(options.seed === undefined ? {} : { seed: options.seed });
    this.preliminarySamples = options.preliminarySamples ?? 2048;
    this.localSearches = options.localSearches ?? 10;
    this.acquisitionTolerance = options.acquisitionTolerance ?? 1e-4;
    this.outputWarping = options.outputWarping ?? 'yeoJohnson';
    this.lengthscalePrior = options.lengthscalePrior === 'optuna' ? optunaLengthscalePrior : gammaLengthscalePrior(3, 6);
    this.priorMean = options.priorMean ?? 'worst';
    const startupDesign = options.startupDesign ?? (options.independentSampler === undefined ? 'latinHypercube' : 'random');
    this.startupDesign = startupDesign === 'latinHypercube' && this.startupTrials > 0 ? new LatinHypercubeDesign(this.startupTrials, () => this.random.nextFloat()) : undefined;
  }

  inferRelativeSearchSpace(study: Study): RelativeSearchSpace {
    if (study.directions.length !== 1) {
      throw new UnsupportedOperationError(
        `GPSampler optimizes one objective, but study "${study.studyName}" has ${study.directions.length}: use the nsga2 or motpe sampler for several objectives.`,
      );
    }
    return intersectionSearchSpace(study.getTrials({ states: ['complete'] }));
  }

  sampleRelative(study: Study, _trial: FrozenTrial, searchSpace: RelativeSearchSpace): TrialParams {
    if (Object.keys(searchSpace).length === 0) return {};
    const trials = study.getTrials({ states: ['complete'] }).filter((t) => t.values !== undefined && Object.keys(searchSpace).every((name) => name in t.params));
    if (trials.length < this.startupTrials) return {};

    const space = new NormalizedSearchSpace(searchSpace);
    const spaceKey = JSON.stringify(searchSpace);
    if (spaceKey !== this.cachedSpaceKey) {
      this.cachedSpaceKey = spaceKey;
      this.cachedObjectiveParams = undefined;
      this.cachedConstraintParams = [];
    }
    const dim = space.dimension;
    const n = trials.length;
    const x = new Float64Array(n * dim);
    trials.forEach((t, i) => x.set(space.normalize(t.params), i * dim));
    const sign = study.directions[0] === 'maximize' ? 1 : -1;
    const standardized = standardize(trials.map((t) => sign * (t.values?.[0] as number)));
    const warped = this.outputWarping === 'yeoJohnson' ? warp(standardized.values) : standardized;
    // The GP's prior mean is 0: shifting the values by the worst one puts it there.
    const scores = this.priorMean === 'worst' ? { values: shiftToZero(warped.values) } : warped;

    const constraintCount = trials.reduce((count, t) => Math.max(count, t.constraints?.length ?? 0), 0);
    // A trial without constraint values in a constrained study counts as infeasible.
    const feasible = trials.map((t) => constraintCount === 0 || (t.constraints !== undefined && t.constraints.length === constraintCount && t.constraints.every((c) => c <= 0)));

    const objectiveGp = this.fit(x, scores.values, space, this.cachedObjectiveParams);
    this.cachedObjectiveParams = objectiveGp.params;
    let threshold = -Infinity;
    let bestIndex = -1;
    scores.values.forEach((v, i) => {
      if (feasible[i] === true && v > threshold) {
        threshold = v;
        bestIndex = i;
      }
    });
    const objective: ObjectiveModel | undefined = bestIndex >= 0 ? { gp: objectiveGp, threshold } : undefined;

    const constraints: ConstraintModel[] = [];
    for (let c = 0; c < constraintCount; c++) {
      // Missing values are taken as violated by the largest amount seen.
      const raw = trials.map((t) => t.constraints?.[c]);
      const worst = Math.max(...raw.filter((v): v is number => v !== undefined));
      const standardized = standardize(raw.map((v) => v ?? worst));
      const gp = this.fit(x, standardized.values, space, this.cachedConstraintParams[c]);
      this.cachedConstraintParams[c] = gp.params;
      constraints.push({ gp, threshold: (0 - standardized.mean) / standardized.scale });
    }

    const acquisition = new LogEiAcquisition(dim, objective, constraints);
    // The best feasible trial seeds one local search; with none feasible there is none (Optuna).
    const optimum = optimizeAcquisition(acquisition, space, {
      inverseSquaredLengthscales: objectiveGp.params.inverseSquaredLengthscales,
      random: () => this.random.nextFloat(),
      warmStarts: bestIndex >= 0 ? [x.slice(bestIndex * dim, (bestIndex + 1) * dim)] : [],
      preliminarySamples: this.preliminarySamples,
      localSearches: this.localSearches,
      tolerance: this.acquisitionTolerance,
    });
    return space.unnormalize(optimum.x);
  }

  sampleIndependent(study: Study, trial: FrozenTrial, paramName: string, distribution: ParameterDistribution): ParameterValue {
    if (this.startupDesign !== undefined && trial.number < this.startupDesign.size && !isSingleValued(distribution)) {
      const space = new NormalizedSearchSpace({ [paramName]: distribution });
      const x = Float64Array.of(this.startupDesign.coordinate(paramName, trial.number));
      space.snapUniform(x);
      return space.unnormalize(x)[paramName] as ParameterValue;
    }
    return this.independentSampler.sampleIndependent(study, trial, paramName, distribution);
  }

  private fit(x: Float64Array, y: Float64Array, space: NormalizedSearchSpace, initial: KernelParams | undefined): GaussianProcess {
    return fitKernelParams(
      { x, y, isCategorical: space.isCategorical },
      initial === undefined
        ? { deterministicObjective: this.deterministicObjective, minimumNoise: this.minimumNoise, lengthscalePrior: this.lengthscalePrior }
        : { deterministicObjective: this.deterministicObjective, minimumNoise: this.minimumNoise, lengthscalePrior: this.lengthscalePrior, initial },
    );
  }
}

function isSingleValued(distribution: ParameterDistribution): boolean {
  return distribution.kind === 'categorical' ? distribution.choices.length === 1 : distribution.low === distribution.high;
}

/** `values` minus their smallest (the worst, values being maximized). */
function shiftToZero(values: Float64Array): Float64Array {
  let worst = Infinity;
  for (const v of values) worst = Math.min(worst, v);
  return Float64Array.from(values, (v) => v - worst);
}

/** Standardized values after the maximum-likelihood Yeo-Johnson transform of standardized `values`. */
function warp(values: Float64Array): { values: Float64Array } {
  const lambda = fitYeoJohnsonLambda(values);
  return { values: standardize(Array.from(values, (v) => yeoJohnson(v, lambda))).values };
}

/**
 * (v - mean) / std with the population standard deviation (floored at 1e-10, as Optuna), after
 * clipping infinite values to the finite range (Optuna's `warn_and_convert_inf`).
 */
function standardize(values: readonly number[]): { values: Float64Array; mean: number; scale: number } {
  const finite = values.filter((v) => Number.isFinite(v));
  const low = finite.length > 0 ? Math.min(...finite) : 0;
  const high = finite.length > 0 ? Math.max(...finite) : 0;
  const clipped = values.map((v) => Math.min(high, Math.max(low, Number.isNaN(v) ? high : v)));
  const mean = clipped.reduce((a, b) => a + b, 0) / clipped.length;
  const variance = clipped.reduce((a, b) => a + (b - mean) ** 2, 0) / clipped.length;
  const scale = Math.max(1e-10, Math.sqrt(variance));
  return { values: Float64Array.from(clipped, (v) => (v - mean) / scale), mean, scale };
}
