import * as z from 'zod';

/** The agents `search: { use: search-rl, with: { agent } }` accepts. */
export const agentNames = ['ddpg', 'reinforce'] as const;

const optionsByAgent: Readonly<Record<string, (typeof agentNames)[number]>> = {
  actorLearningRate: 'ddpg',
  criticLearningRate: 'ddpg',
  batchSize: 'ddpg',
  bufferSize: 'ddpg',
  noise: 'ddpg',
  noiseDecay: 'ddpg',
  learningRate: 'reinforce',
  entropyWeight: 'reinforce',
  bins: 'reinforce',
};

/** The plugin's `with:` options (strict: a misspelt key, or an option of the other agent, is an error). */
export const searchRlOptionsSchema = z
  .strictObject({
    /** ddpg: continuous actions (AMC); reinforce: a policy over discrete choices (HAQ-style). */
    agent: z.enum(agentNames).default('ddpg'),
    /** Episodes to run: one trial each, every per-layer parameter decided in it. */
    trials: z.int().positive(),
    /** Episodes of random actions before the agent's policy takes over [a quarter of the trials]. */
    warmupEpisodes: z.int().min(0).optional(),
    /** Makes the search reproducible (per tfjs backend); without it, every run differs. */
    seed: z.int().min(0).max(0xffff_ffff).optional(),
    /** Units in each of the two hidden layers of every network. */
    hiddenUnits: z.int().min(1).default(64),
    /** What the agent maximizes: the first objective (negated when it is minimized), or accuracy with a latency term. */
    reward: z.enum(['objective', 'accuracyLatency']).default('objective'),
    /** With reward accuracyLatency: the objective index of the accuracy. */
    accuracyObjective: z.int().min(0).default(0),
    /** With reward accuracyLatency: the objective index of the latency. */
    latencyObjective: z.int().min(0).default(1),
    /** With reward accuracyLatency: reward = accuracy - latencyWeight * latency / latencyReference. */
    latencyWeight: z.number().min(0).default(0.1),
    /** With reward accuracyLatency: the latency that costs latencyWeight [the first complete trial's]. */
    latencyReference: z.number().positive().optional(),
    /** Weight of the past in the moving-average reward baseline. */
    baselineDecay: z.number().min(0).max(1).default(0.95),
    /** DDPG: the actor's Adam learning rate [1e-3]. */
    actorLearningRate: z.number().positive().optional(),
    /** DDPG: the critic's Adam learning rate [1e-2]. */
    criticLearningRate: z.number().positive().optional(),
    /** DDPG: transitions per update [64]. */
    batchSize: z.int().min(1).optional(),
    /** DDPG: transitions the replay buffer keeps [2000]. */
    bufferSize: z.int().min(1).optional(),
    /** DDPG: width of the truncated-normal exploration noise right after the warm-up [0.5, as AMC]. */
    noise: z.number().min(0).optional(),
    /** DDPG: the noise's factor per episode [0.95, as AMC]. */
    noiseDecay: z.number().min(0).max(1).optional(),
    /** REINFORCE: the policy's Adam learning rate [0.01]. */
    learningRate: z.number().positive().optional(),
    /** REINFORCE: weight of the policy's entropy in the loss [0.01]. */
    entropyWeight: z.number().min(0).optional(),
    /** REINFORCE: values a continuous parameter (no step) is discretized into [11]. */
    bins: z.int().min(2).optional(),
    /** Run the networks on tfjs-node / tfjs-node-gpu when installed (auto), or always on the pure-JS CPU backend. */
    backend: z.enum(['auto', 'cpu']).default('auto'),
  })
  .superRefine((options, ctx) => {
    for (const [key, agent] of Object.entries(optionsByAgent)) {
      if (agent !== options.agent && (options as Record<string, unknown>)[key] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to agent ${agent}, not ${options.agent}; remove it or change the agent` });
      }
    }
  });

export type SearchRlOptions = z.output<typeof searchRlOptionsSchema>;

/** The agent-specific options' values when not given (AMC's and HAQ's settings where they apply). */
export const agentOptionDefaults = {
  actorLearningRate: 1e-3,
  criticLearningRate: 1e-2,
  batchSize: 64,
  bufferSize: 2000,
  noise: 0.5,
  noiseDecay: 0.95,
  learningRate: 0.01,
  entropyWeight: 0.01,
  bins: 11,
} as const;
