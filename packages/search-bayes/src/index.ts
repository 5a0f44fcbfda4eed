import { createRequire } from 'node:module';
import { StrategyToken, definePlugin, registerFactory } from '@open-autoglm/core';
import { BayesStrategy } from './BayesStrategy.js';
import { searchBayesOptionsSchema } from './searchBayesOptions.js';

// package.json sits one level above both src/ and dist/.
const manifest = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export { BayesStrategy, createSampler } from './BayesStrategy.js';
export { samplerNames, searchBayesOptionsSchema, type SearchBayesOptions } from './searchBayesOptions.js';
export { createStudy, loadStudy, type CreateSearchStudyOptions, type LoadSearchStudyOptions, type SearchStudyOptions } from './createStudy.js';
// The study itself lives in core (shared with every strategy plugin); re-exported so this
// package's API is unchanged.
export {
  InMemoryStorage,
  NopPruner,
  RandomSampler,
  SearchStudy,
  dominates,
  failReasonSystemAttrKey,
  fixedParamsSystemAttrKey,
  nonDominationRanks,
  paretoFrontIndices,
  type ConstraintsFunction,
  type RandomSamplerOptions,
} from '@open-autoglm/core';
export { TPESampler, defaultGamma, defaultWeights, type TPESamplerOptions } from './samplers/TPESampler.js';
export { MOTPESampler } from './samplers/MOTPESampler.js';
export { NSGAIISampler, generationSystemAttrKey, type NSGAIISamplerOptions } from './samplers/NSGAIISampler.js';
export { intersectionSearchSpace } from './samplers/intersectionSearchSpace.js';
export { MedianPruner, type MedianPrunerOptions } from './pruners/MedianPruner.js';
export { SuccessiveHalvingPruner, type SuccessiveHalvingPrunerOptions } from './pruners/SuccessiveHalvingPruner.js';
export { hypervolume } from './multiObjective/hypervolume.js';
export { GPSampler, type GPSamplerOptions } from './gp/GPSampler.js';

/** The search strategy plugin: random, TPE, NSGA-II and MOTPE samplers behind an Optuna-shaped study API. */
export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'Bayesian-optimization search: random, TPE, NSGA-II, MOTPE samplers with median / successive-halving pruning',
  provides: [StrategyToken],
  configSchema: searchBayesOptionsSchema,
  register(container, options) {
    registerFactory(container, StrategyToken, () => new BayesStrategy(options));
  },
});
