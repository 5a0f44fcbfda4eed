import type { FrozenTrial } from '../contracts/FrozenTrial.js';
import type { RelativeSearchSpace, Sampler } from '../contracts/Sampler.js';
import type { ParameterDistribution, ParameterValue, TrialParams } from '../contracts/SearchSpace.js';
import type { Study } from '../contracts/Study.js';
import { SeededRandom } from '../random/SeededRandom.js';

export interface RandomSamplerOptions {
  /** Makes the sequence reproducible; without it, every run differs. */
  readonly seed?: number;
}

/**
 * Independent uniform sampling (Optuna's `RandomSampler`): floats uniformly in [low, high] (in
 * log space on a log scale), integers and stepped floats uniformly over their grid, categorical
 * choices uniformly.
 */
export class RandomSampler implements Sampler {
  private readonly random: SeededRandom;

  constructor(options: RandomSamplerOptions = {}) {
    this.random = options.seed === undefined ? SeededRandom.fromEntropy() : new SeededRandom(options.seed);
  }

  inferRelativeSearchSpace(): RelativeSearchSpace {
    return {};
  }

  sampleRelative(): TrialParams {
    return {};
  }

  sampleIndependent(_study: Study, _trial: FrozenTrial, _paramName: string, distribution: ParameterDistribution): ParameterValue {
    return sampleUniform(this.random, distribution);
  }
}

/** One value drawn uniformly from `distribution` (what the random sampler and the start-up phases use). */
export function sampleUniform(random: SeededRandom, distribution: ParameterDistribution): ParameterValue {
  if (distribution.kind === 'categorical') return distribution.choices[random.nextInt(distribution.choices.length)] as ParameterValue;
  const { low, high } = distribution;
  if (distribution.log === true) {
    if (distribution.kind === 'float') return Math.min(high, Math.exp(random.nextFloatIn(Math.log(low), Math.log(high))));
    // Integers on a log scale: uniform in log space over [low - 0.5, high + 0.5], then rounded.
    const value = Math.round(Math.exp(random.nextFloatIn(Math.log(low - 0.5), Math.log(high + 0.5))));
    return Math.min(high, Math.max(low, value));
  }
  const step = distribution.kind === 'int' ? (distribution.step ?? 1) : distribution.step;
  if (step === undefined) return random.nextFloatIn(low, high);
  const count = Math.floor((high - low) / step + 1e-9) + 1;
  const value = low + random.nextInt(count) * step;
  return Math.min(high, distribution.kind === 'int' ? Math.round(value) : value);
}
