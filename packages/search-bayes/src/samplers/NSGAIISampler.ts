import { ConfigError, dominates, isValueInDistribution, roundToGrid, sampleUniform, SeededRandom, type FrozenTrial, type ParameterDistribution, type ParameterValue, type RelativeSearchSpace, type Sampler, type Study, type StudyDirection, type TrialParams } from '@open-autoglm/core';
import { intersectionSearchSpace } from './intersectionSearchSpace.js';

export interface NSGAIISamplerOptions {
  readonly seed?: number;
  /** Individuals per generation [50]. */
  readonly populationSize?: number;
  /** Probability of resampling each parameter of a child [1 / number of parameters]. */
  readonly mutationProb?: number;
  /** How two parents make a child: `uniform` swaps parameters, `sbx` is simulated binary crossover ['uniform', as Optuna 3.1]. */
  readonly crossover?: 'uniform' | 'sbx';
  /** Probability of crossover rather than copying one parent [0.9]. */
  readonly crossoverProb?: number;
  /** Probability of taking each parameter from the second parent in uniform crossover [0.5]. */
  readonly swappingProb?: number;
  /** SBX distribution index [20 for several objectives, 2 for one]. */
  readonly sbxEta?: number;
}

/** The system attribute holding a trial's generation (Optuna's key). */
export const generationSystemAttrKey = 'nsga2:generation';

const maxCrossoverAttempts = 1000;

/**
 * NSGA-II (Deb et al. 2002) as Optuna's `NSGAIISampler`: each generation of `populationSize`
 * complete trials is merged with the previous elite, which is kept by non-domination rank and
 * crowding distance; children come from binary-tournament parents by crossover and mutation.
 * When trials carry constraints, feasible trials dominate infeasible ones and smaller total
 * violation wins among infeasible ones (constraint-domination).
 */
export class NSGAIISampler implements Sampler {
  private readonly random: SeededRandom;
  private readonly independentRandom: SeededRandom;
  private readonly populationSize: number;
  private readonly mutationProb: number | undefined;
  private readonly crossover: 'uniform' | 'sbx';
  private readonly crossoverProb: number;
  private readonly swappingProb: number;
  private readonly sbxEta: number | undefined;

  constructor(options: NSGAIISamplerOptions = {}) {
    const random = options.seed === undefined ? SeededRandom.fromEntropy() : new SeededRandom(options.seed);
    this.random = random.fork();
    this.independentRandom = random.fork();
    this.populationSize = options.populationSize ?? 50;
    if (!Number.isInteger(this.populationSize) || this.populationSize < 2) {
      throw new ConfigError(`NSGA-II populationSize must be an integer >= 2, not ${this.populationSize}.`);
    }
    const probability = (name: string, value: number | undefined): void => {
      if (value !== undefined && !(value >= 0 && value <= 1)) throw new ConfigError(`NSGA-II ${name} must be a probability in [0, 1], not ${value}.`);
    };
    probability('mutationProb', options.mutationProb);
    probability('crossoverProb', options.crossoverProb);
    probability('swappingProb', options.swappingProb);
    this.mutationProb = options.mutationProb;
    this.crossover = options.crossover ?? 'uniform';
    this.crossoverProb = options.crossoverProb ?? 0.9;
    this.swappingProb = options.swappingProb ?? 0.5;
    this.sbxEta = options.sbxEta;
  }

  inferRelativeSearchSpace(study: Study): RelativeSearchSpace {
    return intersectionSearchSpace(study.getTrials({ states: ['complete'] }));
  }

  sampleRelative(study: Study, trial: FrozenTrial, searchSpace: RelativeSearchSpace): TrialParams {
    const [parentGeneration, parents] = this.parentPopulation(study);
    study.storage.setTrialSystemAttr(trial.trialId, generationSystemAttrKey, parentGeneration + 1);
    if (parentGeneration < 0 || Object.keys(searchSpace).length === 0) return {};
    const dominance = this.dominance(study);
    let child: Record<string, ParameterValue>;
    if (this.random.nextFloat() < this.crossoverProb) {
      child = this.crossoverChild(study, parents, searchSpace, dominance);
    } else {
      const parent = parents[this.random.nextInt(parents.length)] as FrozenTrial;
      child = Object.fromEntries(Object.keys(searchSpace).map((name) => [name, parent.params[name] as ParameterValue]));
    }
    const names = Object.keys(child);
    const mutationProb = this.mutationProb ?? 1 / Math.max(1, names.length);
    const params: Record<string, ParameterValue> = {};
    // A parameter left out is resampled at random by sampleIndependent: that is the mutation.
    for (const name of names) if (this.random.nextFloat() >= mutationProb) params[name] = child[name] as ParameterValue;
    return params;
  }

  sampleIndependent(_study: Study, _trial: FrozenTrial, _paramName: string, distribution: ParameterDistribution): ParameterValue {
    return sampleUniform(this.independentRandom, distribution);
  }

  private dominance(study: Study): (a: FrozenTrial, b: FrozenTrial) => boolean {
    const constrained = study.getTrials({ states: ['complete'] }).some((trial) => trial.constraints !== undefined);
    return constrained ? (a, b) => constrainedDominates(a, b, study.directions) : (a, b) => trialDominates(a, b, study.directions);
  }

  /** The latest full generation's elite (and its number), or -1 while the first generation is incomplete. */
  private parentPopulation(study: Study): [number, FrozenTrial[]] {
    const byGeneration = new Map<number, FrozenTrial[]>();
    for (const trial of study.getTrials({ states: ['complete'] })) {
      const generation = trial.systemAttrs[generationSystemAttrKey];
      if (typeof generation !== 'number') continue;
      byGeneration.set(generation, [...(byGeneration.get(generation) ?? []), trial]);
    }
    const dominance = this.dominance(study);
    let parentGeneration = -1;
    let parents: FrozenTrial[] = [];
    for (;;) {
      const population = byGeneration.get(parentGeneration + 1) ?? [];
      if (population.length < this.populationSize) break;
      parents = this.selectElite([...population, ...parents], dominance, study.directions);
      parentGeneration += 1;
    }
    return [parentGeneration, parents];
  }

  private selectElite(population: FrozenTrial[], dominance: (a: FrozenTrial, b: FrozenTrial) => boolean, directions: readonly StudyDirection[]): FrozenTrial[] {
    const elite: FrozenTrial[] = [];
    for (const front of nonDominatedFronts(population, dominance)) {
      if (elite.length + front.length < this.populationSize) {
        elite.push(...front);
        continue;
      }
      const distances = crowdingDistances(front, directions);
      const order = front.map((_, i) => i).sort((a, b) => (distances[b] ?? 0) - (distances[a] ?? 0) || a - b);
      elite.push(...order.slice(0, this.populationSize - elite.length).map((i) => front[i] as FrozenTrial));
      break;
    }
    return elite;
  }

  private crossoverChild(
    study: Study,
    population: readonly FrozenTrial[],
    searchSpace: RelativeSearchSpace,
    dominance: (a: FrozenTrial, b: FrozenTrial) => boolean,
  ): Record<string, ParameterValue> {
    const names = Object.keys(searchSpace);
    for (let attempt = 0; ; attempt++) {
      const first = this.tournament(population, dominance);
      const second = this.tournament(
        population.filter((trial) => trial !== first),
        dominance,
      );
      const child: Record<string, ParameterValue> = {};
      const sbxEta = this.sbxEta ?? (study.directions.length > 1 ? 20 : 2);
      for (const name of names) {
        const distribution = searchSpace[name] as ParameterDistribution;
        const a = first.params[name] as ParameterValue;
        const b = second.params[name] as ParameterValue;
        if (distribution.kind === 'categorical' || this.crossover === 'uniform') {
          child[name] = this.random.nextFloat() >= this.swappingProb ? b : a;
        } else {
          child[name] = this.sbx(distribution, a as number, b as number, sbxEta);
        }
      }
      const contained = names.every((name) => isValueInDistribution(searchSpace[name] as ParameterDistribution, child[name] as ParameterValue));
      if (contained || attempt >= maxCrossoverAttempts) {
        if (!contained) return {}; // give up on this child: every parameter is then drawn at random
        return child;
      }
    }
  }

  private tournament(population: readonly FrozenTrial[], dominance: (a: FrozenTrial, b: FrozenTrial) => boolean): FrozenTrial {
    const a = population[this.random.nextInt(population.length)] as FrozenTrial;
    const b = population[this.random.nextInt(population.length)] as FrozenTrial;
    return dominance(a, b) ? a : b;
  }

  /** Simulated binary crossover of one numerical parameter (Deb and Agrawal 1995), in the parameter's transformed space. */
  private sbx(distribution: ParameterDistribution & { kind: 'int' | 'float' }, a: number, b: number, eta: number): number {
    const log = distribution.log === true;
    const halfStep = distribution.kind === 'int' ? 0.5 * (distribution.step ?? 1) : distribution.step === undefined ? 0 : 0.5 * distribution.step;
    const lower = log ? Math.log(distribution.low - (distribution.kind === 'int' ? halfStep : 0)) : distribution.low - halfStep;
    const upper = log ? Math.log(distribution.high + (distribution.kind === 'int' ? halfStep : 0)) : distribution.high + halfStep;
    const x1 = log ? Math.log(a) : a;
    const x2 = log ? Math.log(b) : b;
    const xMin = Math.min(x1, x2);
    const xMax = Math.max(x1, x2);
    const diff = Math.max(xMax - xMin, 1e-10);
    const betaQ = (beta: number): number => {
      const alpha = 2 - beta ** -(eta + 1);
      const u = this.random.nextFloat();
      return u > 1 / alpha ? (1 / (2 - u * alpha)) ** (1 / (eta + 1)) : (u * alpha) ** (1 / (eta + 1));
    };
    const c1 = 0.5 * (xMin + xMax - betaQ(1 + (2 * (xMin - lower)) / diff) * diff);
    const c2 = 0.5 * (xMin + xMax + betaQ(1 + (2 * (upper - xMax)) / diff) * diff);
    let value: number;
    if (this.random.nextFloat() < 0.5) value = this.random.nextFloat() < 0.5 ? c1 : c2;
    else value = this.random.nextFloat() < 0.5 ? x1 : x2;
    if (log) value = Math.exp(value);
    if (distribution.kind === 'float' && distribution.step === undefined) return value;
    return roundToGrid(distribution, value);
  }
}

function lossesOf(trial: FrozenTrial, directions: readonly StudyDirection[]): number[] {
  return directions.map((direction, i) => (direction === 'maximize' ? -1 : 1) * (trial.values?.[i] ?? Number.NaN));
}

function trialDominates(a: FrozenTrial, b: FrozenTrial, directions: readonly StudyDirection[]): boolean {
  return dominates(lossesOf(a, directions), lossesOf(b, directions));
}

/** Deb's constraint-domination: feasible beats infeasible, less total violation beats more, then Pareto dominance. */
export function constrainedDominates(a: FrozenTrial, b: FrozenTrial, directions: readonly StudyDirection[]): boolean {
  const ca = a.constraints;
  const cb = b.constraints;
  if (ca === undefined && cb === undefined) return trialDominates(a, b, directions);
  if (cb === undefined) return true;
  if (ca === undefined) return false;
  if (ca.length !== cb.length) throw new ConfigError(`Trials #${a.number} and #${b.number} have different numbers of constraints: give every trial the same constraints.`);
  const feasibleA = ca.every((value) => value <= 0);
  const feasibleB = cb.every((value) => value <= 0);
  if (feasibleA && feasibleB) return trialDominates(a, b, directions);
  if (feasibleA) return true;
  if (feasibleB) return false;
  const violation = (values: readonly number[]): number => values.reduce((sum, value) => sum + Math.max(0, value), 0);
  return violation(ca) < violation(cb);
}

function nonDominatedFronts(population: readonly FrozenTrial[], dominance: (a: FrozenTrial, b: FrozenTrial) => boolean): FrozenTrial[][] {
  const n = population.length;
  const dominatedCount = new Array<number>(n).fill(0);
  const dominatedBy: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = population[i] as FrozenTrial;
      const b = population[j] as FrozenTrial;
      if (dominance(a, b)) {
        dominatedBy[i]?.push(j);
        dominatedCount[j] = (dominatedCount[j] ?? 0) + 1;
      } else if (dominance(b, a)) {
        dominatedBy[j]?.push(i);
        dominatedCount[i] = (dominatedCount[i] ?? 0) + 1;
      }
    }
  }
  const fronts: FrozenTrial[][] = [];
  let current = dominatedCount.flatMap((count, i) => (count === 0 ? [i] : []));
  while (current.length > 0) {
    fronts.push(current.map((i) => population[i] as FrozenTrial));
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominatedBy[i] ?? []) {
        dominatedCount[j] = (dominatedCount[j] ?? 0) - 1;
        if (dominatedCount[j] === 0) next.push(j);
      }
    }
    current = next;
  }
  return fronts;
}

/** Crowding distance of each trial of a front: the normalized size of the box its neighbours span, infinite at the ends. */
export function crowdingDistances(front: readonly FrozenTrial[], directions: readonly StudyDirection[]): number[] {
  const distances = new Array<number>(front.length).fill(0);
  for (let objective = 0; objective < directions.length; objective++) {
    const order = front.map((_, i) => i).sort((a, b) => (front[a]?.values?.[objective] ?? 0) - (front[b]?.values?.[objective] ?? 0));
    const value = (k: number): number => front[order[k] ?? 0]?.values?.[objective] ?? 0;
    const first = value(0);
    const last = value(order.length - 1);
    if (first === last) continue;
    const width = last - first;
    for (let k = 0; k < order.length; k++) {
      const previous = k === 0 ? -Infinity : value(k - 1);
      const next = k === order.length - 1 ? Infinity : value(k + 1);
      const gap = previous === next ? 0 : next - previous;
      const index = order[k] ?? 0;
      distances[index] = (distances[index] ?? 0) + gap / width;
    }
  }
  return distances;
}
