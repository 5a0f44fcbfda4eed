import { createRequire } from 'node:module';
import { StrategyToken, definePlugin, registerFactory } from '@open-autoglm/core';
import { RlStrategy } from './RlStrategy.js';
import { searchRlOptionsSchema } from './searchRlOptions.js';

// package.json sits one level above both src/ and dist/.
const manifest = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export { RlStrategy } from './RlStrategy.js';
export { LayerwiseStudy } from './LayerwiseStudy.js';
export { LayerwiseSampler, agentCheckpointSystemAttrKey } from './LayerwiseSampler.js';
export {
  EpisodePlanner,
  drivePlanning,
  drivePlanningSync,
  stateFeatureNames,
  stateSize,
  type EpisodePlan,
  type EpisodePlannerOptions,
  type PlanBudget,
  type Planning,
  type StepDecision,
  type StepPolicy,
} from './EpisodePlanner.js';
export type { LayerwiseAgent } from './LayerwiseAgent.js';
export { DdpgAgent, type DdpgAgentOptions } from './DdpgAgent.js';
export { ReinforceAgent, type ReinforceAgentOptions } from './ReinforceAgent.js';
export { agentNames, agentOptionDefaults, searchRlOptionsSchema, type SearchRlOptions } from './searchRlOptions.js';
export { useNativeTensorflow } from './tensorflow.js';

/** The reinforcement-learning search strategy plugin: AMC-style DDPG and REINFORCE agents over layer-wise decisions. */
export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'Reinforcement-learning search: AMC-style DDPG (continuous ratios) and REINFORCE (discrete choices) agents deciding per-layer parameters within a MACs/params budget',
  provides: [StrategyToken],
  configSchema: searchRlOptionsSchema,
  register(container, options) {
    registerFactory(container, StrategyToken, () => new RlStrategy(options));
  },
});
