import { NopPruner, RandomSampler, type CreateStudyOptions, type Sampler, type Strategy, type Study, type TrialPruner } from '@open-autoglm/core';
import { GPSampler } from './gp/GPSampler.js';
import { MedianPruner } from './pruners/MedianPruner.js';
import { SuccessiveHalvingPruner } from './pruners/SuccessiveHalvingPruner.js';
import { MOTPESampler } from './samplers/MOTPESampler.js';
import { NSGAIISampler } from './samplers/NSGAIISampler.js';
import { TPESampler } from './samplers/TPESampler.js';
import type { SearchBayesOptions } from './searchBayesOptions.js';
import { createStudy } from './createStudy.js';

/** The search-bayes strategy: opens studies sampled by the configured sampler and pruner. */
export class BayesStrategy implements Strategy {
  constructor(private readonly options: SearchBayesOptions) {}

  get trials(): number {
    return this.options.trials;
  }

  createStudy(options: CreateStudyOptions): Study {
    return createStudy({ ...options, sampler: createSampler(this.options), pruner: createPruner(this.options) });
  }
}

/** A new sampler as the options describe it (each study gets its own, seeded alike). */
export function createSampler(options: SearchBayesOptions): Sampler {
  const seed = options.seed === undefined ? {} : { seed: options.seed };
  const tpe = {
    ...seed,
    ...(options.startupTrials === undefined ? {} : { startupTrials: options.startupTrials }),
    ...(options.eiCandidates === undefined ? {} : { eiCandidates: options.eiCandidates }),
    ...(options.multivariate === undefined ? {} : { multivariate: options.multivariate }),
    ...(options.constantLiar === undefined ? {} : { constantLiar: options.constantLiar }),
  };
  switch (options.sampler) {
    case 'random':
      return new RandomSampler(seed);
    case 'tpe':
      return new TPESampler({
        ...tpe,
        ...(options.startupDesign === 'halton' || options.startupDesign === 'random' ? { startupDesign: options.startupDesign } : {}),
        ...(options.goodWeights === undefined ? {} : { goodWeights: options.goodWeights }),
      });
    case 'motpe':
      return new MOTPESampler(tpe);
    case 'nsga2':
      return new NSGAIISampler({
        ...seed,
        ...(options.populationSize === undefined ? {} : { populationSize: options.populationSize }),
        ...(options.crossover === undefined ? {} : { crossover: options.crossover }),
      });
    case 'gp':
      return new GPSampler({
        ...seed,
        ...(options.startupTrials === undefined ? {} : { startupTrials: options.startupTrials }),
        ...(options.lengthscalePrior === undefined ? {} : { lengthscalePrior: options.lengthscalePrior }),
        ...(options.priorMean === undefined ? {} : { priorMean: options.priorMean }),
        ...(options.startupDesign === 'latinHypercube' || options.startupDesign === 'random' ? { startupDesign: options.startupDesign } : {}),
      });
  }
}

function createPruner(options: SearchBayesOptions): TrialPruner {
  switch (options.pruner) {
    case 'median':
      return new MedianPruner();
    case 'successiveHalving':
      return new SuccessiveHalvingPruner();
    case 'none':
      return new NopPruner();
  }
}
