import { nonDominationRanks, sampleUniform, SeededRandom, toExternalRepr, toInternalRepr, type FrozenTrial, type ParameterDistribution, type ParameterValue, type RelativeSearchSpace, type Sampler, type Study, type TrialParams, type TrialState } from '@open-autoglm/core';
import { hypervolume } from '../multiObjective/hypervolume.js';
import { solveHssp } from '../multiObjective/solveHssp.js';
import { NormalizedSearchSpace } from '../gp/NormalizedSearchSpace.js';
import { scrambledHalton } from '../gp/scrambledHalton.js';
import { intersectionSearchSpace } from './intersectionSearchSpace.js';
import { ParzenEstimator, type ParzenEstimatorParameters } from './ParzenEstimator.js';

/** Optuna's default gamma: the best 10% of trials (rounded up), at most 25, form the "good" group. */
export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

/** Optuna's default weights: the 25 newest observations weigh 1, older ones ramp down linearly to 1/n. */
export function defaultWeights(n: number): Float64Array {
  if (n < 25) return new Float64Array(n).fill(1);
  const weights = new Float64Array(n).fill(1);
  const rampLength = n - 25;
  for (let i = 0; i < rampLength; i++) weights[i] = rampLength === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (rampLength - 1);
  return weights;
}

export interface TPESamplerOptions {
  readonly seed?: number;
  /** Start-up trials (drawn as `startupDesign` says) before TPE takes over [10]. */
  readonly startupTrials?: number;
  /**
   * How the start-up trials are drawn: the points of a scrambled Halton sequence ['halton'], which
   * cover the space evenly so that fewer basins go unseen before the model takes over, or
   * independent uniform draws as Optuna ('random'). Trial k (by number) of the start-up takes
   * point k; each parameter takes the next dimension of the sequence when it is first suggested.
   */
  readonly startupDesign?: 'random' | 'halton';
  /** Candidates drawn from the good-trials estimator per suggestion [24]. */
  readonly eiCandidates?: number;
  /** Size of the good group for `n` finished trials [defaultGamma]. */
  readonly gamma?: (n: number) => number;
  /** Weights of observations, oldest first [defaultWeights]. */
  readonly weights?: (n: number) => ArrayLike<number>;
  readonly priorWeight?: number;
  /**
   * Weights of the good group's observations, single objective: each observation's improvement
   * over the best value of the other group, the prior weighing their mean ['improvement':
   * Watanabe 2023's "EI" weighting], which puts the good estimator's mass on the best
   * observations; or the `weights` function, as Optuna ('recency'). Several objectives weigh by
   * hypervolume contribution either way.
   */
  readonly goodWeights?: 'recency' | 'improvement';
  readonly considerMagicClip?: boolean;
  readonly considerEndpoints?: boolean;
  /**
   * Score candidates with the kernels' true densities (with each kernel's 1/sigma), as Optuna >= 3.5
   * does [true]; `false` is Optuna 3.1's scale-free scores. See ParzenEstimatorParameters.
   */
  readonly exactDensity?: boolean;
  /** Model the parameters jointly (multivariate TPE, Optuna 5.0's default) rather than one by one [true]. */
  readonly multivariate?: boolean;
  /**
   * Kernel widths when `multivariate`: each kernel as wide as the univariate rule's gaps to its
   * neighbours, per dimension, as Optuna 5.0 ['neighbourGaps'], or one width per dimension by
   * Scott's rule, 0.2 range n^(-1/(d+4)), as Optuna 3.1 to 4.x ('scott').
   */
  readonly multivariateBandwidth?: 'scott' | 'neighbourGaps';
  /** Count the prior's centre among the neighbours that set kernel widths [false, as Optuna >= 4.6; Optuna 3.1: true]. */
  readonly priorInNeighbourGaps?: boolean;
  /**
   * Count running trials as bad ones (constant liar), so that parallel workers asking at the same
   * time spread out instead of proposing the same point [false].
   */
  readonly constantLiar?: boolean;
}

interface Observations {
  /** Internal representation per parameter, NaN where the trial lacks it. */
  readonly values: Record<string, Float64Array>;
  /** Sort keys: [step key, losses...]; complete trials have step key -Infinity, running ones +Infinity. */
  readonly scores: { readonly step: number; readonly losses: readonly number[] }[];
  /** Sum of positive constraint values per trial, when any trial has constraints. */
  readonly violations: Float64Array | undefined;
}

const eps = 1e-12;

/**
 * The tree-structured Parzen estimator (Optuna's `TPESampler`): after the start-up trials, finished trials are split into a good group (the best `gamma(n)`; for several
 * objectives, by non-domination rank then hypervolume contribution) and the rest; each
 * suggestion draws `eiCandidates` points from the good group's Parzen estimator l(x) and keeps
 * the one maximizing l(x) / g(x). With constraints on the trials, feasible trials are preferred
 * for the good group (c-TPE as Optuna does it).
 *
 * The defaults are Optuna 5.0's estimator (joint kernels with neighbour-gap widths, the prior out
 * of the gaps, true densities) with Optuna 3.1's gamma and 24 candidates, start-up trials on a
 * scrambled Halton sequence and the good group weighed by improvement; `{ multivariate: false,
 * exactDensity: false, priorInNeighbourGaps: true, startupDesign: 'random', goodWeights:
 * 'recency' }` is Optuna 3.1's TPE, whose estimator gives the same log densities as Optuna 3.1's
 * (ParzenEstimator.python.test.ts). Medians of the best value over 200 trials, seeds 1-10 /
 * 101-140 (bench/searchTpeVariants.ts, bench/results/search-tpe-halton-improvement.json): see
 * the package README, which also has Optuna 3.1's figures on the same seeds.
 */
export class TPESampler implements Sampler {
  private readonly random: SeededRandom;
  private readonly startupRandom: SeededRandom;
  private readonly startupTrials: number;
  private readonly startupDesign: 'random' | 'halton';
  /** Seeds the start-up design, regenerated whole when a new parameter needs a dimension. */
  private readonly designSeed: number;
  /** The dimension of the start-up design each parameter takes, in order of first suggestion. */
  private readonly designDimensions = new Map<string, number>();
  private design: Float64Array | undefined;
  private readonly eiCandidates: number;
  private readonly gamma: (n: number) => number;
  private readonly multivariate: boolean;
  private readonly constantLiar: boolean;
  private readonly goodWeights: 'recency' | 'improvement';
  private readonly parzenParameters: ParzenEstimatorParameters;

  constructor(options: TPESamplerOptions = {}) {
    const random = options.seed === undefined ? SeededRandom.fromEntropy() : new SeededRandom(options.seed);
    this.random = random.fork();
    this.startupRandom = random.fork();
    // Drawn after the forks, so that the other streams do not depend on the design.
    this.designSeed = random.nextUint32();
    this.startupTrials = options.startupTrials ?? 10;
    this.startupDesign = options.startupDesign ?? 'halton';
    this.eiCandidates = options.eiCandidates ?? 24;
    this.gamma = options.gamma ?? defaultGamma;
    this.multivariate = options.multivariate ?? true;
    this.constantLiar = options.constantLiar ?? false;
    this.goodWeights = options.goodWeights ?? 'improvement';
    this.parzenParameters = {
      priorWeight: options.priorWeight ?? 1,
      considerMagicClip: options.considerMagicClip ?? true,
      considerEndpoints: options.considerEndpoints ?? false,
      weights: options.weights ?? defaultWeights,
      multivariate: this.multivariate,
      exactDensity: options.exactDensity ?? true,
      multivariateBandwidth: options.multivariateBandwidth ?? 'neighbourGaps',
      priorInNeighbourGaps: options.priorInNeighbourGaps ?? false,
    };
  }

  inferRelativeSearchSpace(study: Study): RelativeSearchSpace {
    if (!this.multivariate) return {};
    return intersectionSearchSpace(study.getTrials({ states: ['complete', 'pruned'] }));
  }

  sampleRelative(study: Study, _trial: FrozenTrial, searchSpace: RelativeSearchSpace): TrialParams {
    const names = Object.keys(searchSpace);
    if (names.length === 0) return {};
    const observations = this.observe(study, names);
    if (this.finishedCount(observations) < this.startupTrials) return {};
    const best = this.sampleBest(study, observations, searchSpace);
    const params: Record<string, ParameterValue> = {};
    for (const name of names) params[name] = toExternalRepr(searchSpace[name] as ParameterDistribution, best[name] ?? Number.NaN);
    return params;
  }

  sampleIndependent(study: Study, trial: FrozenTrial, paramName: string, distribution: ParameterDistribution): ParameterValue {
    const observations = this.observe(study, [paramName]);
    if (this.finishedCount(observations) < this.startupTrials) {
      // Beyond the design's points (parallel workers asking before the start-up trials finish), uniform draws.
      if (this.startupDesign === 'halton' && trial.number < this.startupTrials) return this.designValue(trial.number, paramName, distribution);
      return sampleUniform(this.startupRandom, distribution);
    }
    const best = this.sampleBest(study, observations, { [paramName]: distribution });
    return toExternalRepr(distribution, best[paramName] ?? Number.NaN);
  }

  /** Coordinate `paramName` of point `index` of the start-up design, mapped onto `distribution`. */
  private designValue(index: number, paramName: string, distribution: ParameterDistribution): ParameterValue {
    let dimension = this.designDimensions.get(paramName);
    if (dimension === undefined) {
      dimension = this.designDimensions.size;
      this.designDimensions.set(paramName, dimension);
    }
    const dimensions = this.designDimensions.size;
    if (this.design === undefined || this.design.length < this.startupTrials * dimensions) {
      // The generator draws its random start and then the columns in order, so regenerating with
      // more dimensions from the same seed leaves the existing columns as they were.
      const random = new SeededRandom(this.designSeed);
      this.design = scrambledHalton(this.startupTrials, dimensions, () => random.nextFloat());
    }
    const unit = this.design[index * dimensions + dimension] ?? 0;
    const space = new NormalizedSearchSpace({ [paramName]: distribution });
    const coordinate = distribution.kind === 'categorical' ? Math.floor(unit * distribution.choices.length) : unit;
    return space.unnormalize(Float64Array.of(coordinate))[paramName] as ParameterValue;
  }

  private finishedCount(observations: Observations): number {
    return observations.scores.reduce((count, score) => count + (score.step < Infinity ? 1 : 0), 0);
  }

  /** Splits the observations, fits l(x) and g(x), and returns the candidate maximizing l/g (internal representation). */
  private sampleBest(study: Study, observations: Observations, searchSpace: RelativeSearchSpace): Record<string, number> {
    const names = Object.keys(searchSpace);
    const n = this.finishedCount(observations);
    const [below, above] = splitObservations(observations, this.gamma(n));
    // Trials that lack one of the parameters say nothing about this space.
    const first = observations.values[names[0] as string] ?? new Float64Array(0);
    const hasParams = (i: number): boolean => !Number.isNaN(first[i] ?? Number.NaN);
    const belowKept = below.filter(hasParams);
    const aboveKept = above.filter(hasParams);
    const pick = (indices: readonly number[]): Record<string, Float64Array> =>
      Object.fromEntries(names.map((name) => [name, Float64Array.from(indices, (i) => observations.values[name]?.[i] ?? Number.NaN)]));

    let weightsBelow: Float64Array | undefined;
    let parametersBelow = this.parzenParameters;
    if (study.directions.length > 1) {
      const all = multiObjectiveWeightsBelow(observations, below);
      weightsBelow = Float64Array.from(below.flatMap((index, k) => (hasParams(index) ? [all[k] ?? eps] : [])));
    } else if (this.goodWeights === 'improvement') {
      const improvements = improvementWeights(observations, belowKept, above);
      if (improvements !== undefined) {
        weightsBelow = improvements;
        parametersBelow = { ...this.parzenParameters, priorWeight: improvements.reduce((sum, w) => sum + w, 0) / improvements.length };
      }
    }
    const estimatorBelow = new ParzenEstimator(pick(belowKept), searchSpace, parametersBelow, weightsBelow);
    const estimatorAbove = new ParzenEstimator(pick(aboveKept), searchSpace, this.parzenParameters);
    const candidates = estimatorBelow.sample(this.random, this.eiCandidates);
    const logBelow = estimatorBelow.logPdf(candidates);
    const logAbove = estimatorAbove.logPdf(candidates);
    let bestIndex = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < this.eiCandidates; i++) {
      const score = (logBelow[i] ?? -Infinity) - (logAbove[i] ?? 0);
      if (score > bestScore) {
        bestScore = score;
        bestIndex = i;
      }
    }
    return Object.fromEntries(names.map((name) => [name, candidates[name]?.[bestIndex] ?? Number.NaN]));
  }

  /** Optuna's observation pairs: complete trials by their values, pruned ones by their last intermediate value. */
  private observe(study: Study, names: readonly string[]): Observations {
    const multiObjective = study.directions.length > 1;
    const signs = study.directions.map((direction) => (direction === 'maximize' ? -1 : 1));
    const states: TrialState[] = this.constantLiar ? ['complete', 'pruned', 'running'] : ['complete', 'pruned'];
    const trials = study.getTrials({ states });
    const constrained = trials.some((trial) => trial.constraints !== undefined);
    const columns: number[][] = names.map(() => []);
    const scores: { step: number; losses: number[] }[] = [];
    const violations: number[] = [];
    for (const trial of trials) {
      let score: { step: number; losses: number[] };
      if (trial.state === 'complete') {
        if (trial.values === undefined) continue;
        score = { step: -Infinity, losses: trial.values.map((value, i) => (signs[i] ?? 1) * value) };
      } else if (trial.state === 'pruned') {
        if (multiObjective) continue;
        if (trial.intermediateValues.size > 0) {
          const step = Math.max(...trial.intermediateValues.keys());
          const value = trial.intermediateValues.get(step) ?? Number.NaN;
          score = Number.isNaN(value) ? { step: -step, losses: [Infinity] } : { step: -step, losses: [(signs[0] ?? 1) * value] };
        } else {
          score = { step: 1, losses: [0] };
        }
      } else {
        if (multiObjective) continue;
        score = { step: Infinity, losses: [(signs[0] ?? 1) * Infinity] };
      }
      scores.push(score);
      names.forEach((name, k) => {
        const distribution = trial.distributions[name];
        const value = trial.params[name];
        columns[k]?.push(distribution === undefined || value === undefined ? Number.NaN : toInternalRepr(distribution, value));
      });
      if (constrained) {
        const constraints = trial.state === 'running' ? undefined : trial.constraints;
        violations.push(constraints === undefined ? Infinity : constraints.reduce((sum, value) => sum + (value > 0 ? value : 0), 0));
      }
    }
    const values: Record<string, Float64Array> = {};
    names.forEach((name, k) => (values[name] = Float64Array.from(columns[k] ?? [])));
    return { values, scores, violations: constrained ? Float64Array.from(violations) : undefined };
  }
}

/**
 * Each good observation's improvement over the best value of the rest (at least 1e-12), or
 * undefined when that is not defined: a pruned or running trial among them, constraints, or no
 * finite value in the rest.
 */
export function improvementWeights(observations: Observations, below: readonly number[], above: readonly number[]): Float64Array | undefined {
  if (observations.violations !== undefined || below.length === 0) return undefined;
  const complete = (i: number): boolean => observations.scores[i]?.step === -Infinity;
  const loss = (i: number): number => observations.scores[i]?.losses[0] ?? Number.NaN;
  if (!below.every(complete)) return undefined;
  let threshold = Infinity;
  for (const i of above) if (complete(i) && loss(i) < threshold) threshold = loss(i);
  if (!Number.isFinite(threshold)) return undefined;
  return Float64Array.from(below, (i) => Math.max(eps, threshold - loss(i)));
}

/** Optuna's split into the good group (`below`, size nBelow) and the rest, each in ascending index order. */
export function splitObservations(observations: Observations, nBelow: number): [number[], number[]] {
  const { scores, violations } = observations;
  const indices = scores.map((_, i) => i);
  if (violations !== undefined) {
    const byViolation = [...indices].sort((a, b) => (violations[a] ?? 0) - (violations[b] ?? 0) || a - b);
    let below: number[];
    let above: number[];
    if (nBelow >= byViolation.length || (violations[byViolation[nBelow] ?? 0] ?? 0) > 0) {
      below = byViolation.slice(0, nBelow);
      above = byViolation.slice(nBelow);
    } else {
      // Enough feasible trials: split those by their values, and put every infeasible one above.
      const feasible = indices.filter((i) => violations[i] === 0);
      const infeasible = indices.filter((i) => (violations[i] ?? 0) > 0);
      const [feasibleBelow, feasibleAbove] = splitObservations(
        { values: {}, scores: feasible.map((i) => scores[i] as Observations['scores'][number]), violations: undefined },
        nBelow,
      );
      below = feasibleBelow.map((k) => feasible[k] as number);
      above = [...feasibleAbove.map((k) => feasible[k] as number), ...infeasible];
    }
    return [below.sort((a, b) => a - b), above.sort((a, b) => a - b)];
  }
  const nObjectives = scores[0]?.losses.length ?? 1;
  if (nObjectives <= 1) {
    const order = [...indices].sort((a, b) => {
      const sa = scores[a] as Observations['scores'][number];
      const sb = scores[b] as Observations['scores'][number];
      return compareNumbers(sa.step, sb.step) || compareNumbers(sa.losses[0] ?? 0, sb.losses[0] ?? 0) || a - b;
    });
    return [order.slice(0, nBelow).sort((a, b) => a - b), order.slice(nBelow).sort((a, b) => a - b)];
  }
  // Several objectives: whole non-domination ranks first, then the rank that does not fit by
  // greedy hypervolume subset selection.
  const losses = scores.map((score) => score.losses);
  const ranks = nonDominationRanks(losses);
  const below: number[] = [];
  let rank = 0;
  for (; ; rank++) {
    const members = indices.filter((i) => ranks[i] === rank);
    if (members.length === 0 || below.length + members.length > nBelow) break;
    below.push(...members);
  }
  const remaining = nBelow - below.length;
  if (remaining > 0) {
    const members = indices.filter((i) => ranks[i] === rank);
    const memberLosses = members.map((i) => losses[i] as readonly number[]);
    below.push(...solveHssp(memberLosses, remaining, referencePoint(memberLosses)).map((k) => members[k] as number));
  }
  const belowSet = new Set(below);
  return [below.sort((a, b) => a - b), indices.filter((i) => !belowSet.has(i))];
}

// Sorts like numpy on (step, value) records: NaN last.
function compareNumbers(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Optuna's reference point for a set of losses: 10% beyond the worst point, never exactly 0. */
function referencePoint(losses: readonly (readonly number[])[]): number[] {
  const dimensions = losses[0]?.length ?? 0;
  return Array.from({ length: dimensions }, (_, d) => {
    const worst = Math.max(...losses.map((point) => point[d] ?? -Infinity));
    const reference = Math.max(1.1 * worst, 0.9 * worst);
    return reference === 0 ? eps : reference;
  });
}

/**
 * Weights of the good group for multi-objective TPE: each feasible trial's hypervolume
 * contribution, divided by the largest; infeasible trials weigh almost nothing.
 */
function multiObjectiveWeightsBelow(observations: Observations, below: readonly number[]): Float64Array {
  const feasible = below.map((i) => observations.violations === undefined || observations.violations[i] === 0);
  const points = below.filter((_, k) => feasible[k]).map((i) => observations.scores[i]?.losses ?? []);
  let weights: number[];
  if (points.length === 0) weights = [];
  else if (points.length === 1) weights = [1];
  else {
    const reference = referencePoint(points);
    const total = hypervolume(points, reference);
    const contributions = points.map((_, i) => total - hypervolume(points.filter((__, j) => j !== i), reference) + eps);
    const largest = Math.max(...contributions);
    weights = contributions.map((c) => Math.min(1, Math.max(0, c / largest)));
  }
  const result = new Float64Array(below.length).fill(eps);
  let next = 0;
  feasible.forEach((isFeasible, k) => {
    if (isFeasible) result[k] = weights[next++] ?? eps;
  });
  return result;
}
