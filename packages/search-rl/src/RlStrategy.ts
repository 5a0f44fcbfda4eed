import { ConfigError, NopPruner, createStudy, type CreateStudyOptions, type Strategy } from '@open-autoglm/core';
import { LayerwiseSampler } from './LayerwiseSampler.js';
import { LayerwiseStudy } from './LayerwiseStudy.js';
import type { SearchRlOptions } from './searchRlOptions.js';

/**
 * The search-rl strategy: studies whose trials are episodes of a DDPG or REINFORCE agent
 * deciding the search space's parameters one by one, each plan kept within the cost model's
 * budget. It needs the search space up front (`CreateStudyOptions.searchSpace`, with per-layer
 * features); trials are never pruned early (an episode's reward is its final evaluation).
 */
export class RlStrategy implements Strategy {
  constructor(private readonly options: SearchRlOptions) {}

  get trials(): number {
    return this.options.trials;
  }

  createStudy(options: CreateStudyOptions): LayerwiseStudy {
    if (options.searchSpace === undefined || options.searchSpace.length === 0) {
      throw new ConfigError(
        'search-rl needs the search space when the study is created (CreateStudyOptions.searchSpace): the agent walks its per-layer parameters. Add a pass that exposes parameters, or use search-bayes.',
      );
    }
    const sampler = new LayerwiseSampler(this.options, options.searchSpace, options.costModel);
    return new LayerwiseStudy(createStudy({ ...options, sampler, pruner: new NopPruner() }), sampler);
  }
}
