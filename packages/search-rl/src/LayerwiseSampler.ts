import {
  ConfigError,
  SeededRandom,
  fixedParamsSystemAttrKey,
  sampleUniform,
  type FrozenTrial,
  type JsonValue,
  type ParameterDistribution,
  type ParameterValue,
  type RelativeSearchSpace,
  type Sampler,
  type SearchCostModel,
  type SearchSpace,
  type SeededRandomState,
  type Study,
  type TrialParams,
  type TrialState,
} from '@open-autoglm/core';
import { DdpgAgent } from './DdpgAgent.js';
import { EpisodePlanner, drivePlanning, drivePlanningSync, stateSize, type EpisodePlan, type StepPolicy } from './EpisodePlanner.js';
import type { LayerwiseAgent } from './LayerwiseAgent.js';
import { ReinforceAgent } from './ReinforceAgent.js';
import { agentOptionDefaults, type SearchRlOptions } from './searchRlOptions.js';
import { useNativeTensorflow } from './tensorflow.js';

/** The study system attribute holding the agent's checkpoint (weights, buffer, noise, baseline, random state). */
export const agentCheckpointSystemAttrKey = 'search-rl:agent';

/**
 * The RL strategy's sampler: each trial is one episode of the agent over the search space's
 * parameters, planned within the cost model's budget (`EpisodePlanner`); when the trial
 * finishes, the agent learns from its reward and the whole agent is checkpointed in the study's
 * system attributes, so that a study resumed by another process continues learning where this
 * one stopped (with the SQLite storage as with the in-memory one).
 *
 * Sampler methods are synchronous but a cost model's `estimate` is not: with a cost model, each
 * episode is planned by `prepareTrial` (awaited before `ask`; `LayerwiseStudy` does it for
 * `optimize`). Without one, `ask` plans the episode itself.
 */
export class LayerwiseSampler implements Sampler {
  private readonly planner: EpisodePlanner;
  private readonly seed: number;
  private agent: LayerwiseAgent | undefined;
  private random: SeededRandom;
  private latencyReference: number | undefined;
  private prepared: EpisodePlan | undefined;
  private readonly pending = new Map<number, EpisodePlan>();
  private restoredStudyId: number | undefined;

  constructor(
    private readonly options: SearchRlOptions,
    private readonly space: SearchSpace,
    private readonly costModel: SearchCostModel | undefined,
  ) {
    this.planner = new EpisodePlanner(space, {
      ...(costModel === undefined ? {} : { budget: { baseline: costModel.baseline, limit: costModel.limit } }),
      ...(options.agent === 'reinforce' ? { continuousBins: options.bins ?? agentOptionDefaults.bins } : {}),
    });
    this.seed = options.seed ?? SeededRandom.fromEntropy().nextUint32();
    this.random = new SeededRandom(this.seed);
    this.latencyReference = options.latencyReference;
  }

  /** The search space's distributions, by parameter name. */
  get distributions(): Readonly<Record<string, ParameterDistribution>> {
    return this.planner.distributions;
  }

  /** Episodes the agent has learned from (complete trials with a plan of this sampler). */
  get episodes(): number {
    return this.agent?.episodes ?? 0;
  }

  /** Plans the next episode against the cost model; call (and await) it before `study.ask()`. */
  async prepareTrial(study: Study): Promise<void> {
    if (this.options.backend === 'auto') await useNativeTensorflow();
    this.restore(study);
    if (this.prepared !== undefined) return;
    const costModel = this.costModel;
    this.prepared = await drivePlanning(this.planner.plan(this.policy), (plan) => (costModel === undefined ? noEstimate() : costModel.estimate(plan)));
  }

  inferRelativeSearchSpace(_study: Study, trial: FrozenTrial): RelativeSearchSpace {
    // A trial that starts with its parameters (enqueued, or retried after an interruption) is not an episode.
    if (trial.systemAttrs[fixedParamsSystemAttrKey] !== undefined || Object.keys(trial.params).length > 0) return {};
    return this.planner.distributions;
  }

  sampleRelative(study: Study, trial: FrozenTrial, searchSpace: RelativeSearchSpace): TrialParams {
    if (Object.keys(searchSpace).length === 0) return {};
    this.restore(study);
    let plan = this.prepared;
    this.prepared = undefined;
    if (plan === undefined) {
      if (this.costModel !== undefined) {
        throw new ConfigError(
          'search-rl plans each episode against the cost model, which answers asynchronously: await study.prepareTrial() before study.ask(), or run study.optimize().',
        );
      }
      plan = drivePlanningSync(this.planner.plan(this.policy), noEstimate);
    }
    this.pending.set(trial.number, plan);
    return plan.params;
  }

  sampleIndependent(study: Study, _trial: FrozenTrial, _paramName: string, distribution: ParameterDistribution): ParameterValue {
    // A parameter outside the search space the study was opened with: not the agent's to decide.
    this.restore(study);
    return sampleUniform(this.random, distribution);
  }

  afterTrial(study: Study, trial: FrozenTrial, state: TrialState, values: readonly number[] | undefined): void {
    const plan = this.pending.get(trial.number);
    this.pending.delete(trial.number);
    // Failed and pruned trials have no reward to learn from; the episode is dropped.
    if (plan !== undefined && state === 'complete' && values !== undefined) {
      this.ensureAgent().learn(plan.decisions, this.reward(study, values));
    }
    study.storage.setStudySystemAttr(study.studyId, agentCheckpointSystemAttrKey, this.checkpoint());
  }

  /** The reward of a complete trial's values, as the options define it. */
  reward(study: Study, values: readonly number[]): number {
    if (this.options.reward === 'objective') return study.directions[0] === 'minimize' ? -(values[0] as number) : (values[0] as number);
    const { accuracyObjective, latencyObjective, latencyWeight } = this.options;
    const accuracy = values[accuracyObjective];
    const latency = values[latencyObjective];
    if (accuracy === undefined || latency === undefined) {
      throw new ConfigError(
        `search-rl's accuracyLatency reward reads objectives ${accuracyObjective} (accuracy) and ${latencyObjective} (latency), but the study has ${values.length}: set accuracyObjective and latencyObjective to the right indices.`,
      );
    }
    this.latencyReference ??= latency;
    return accuracy - (latencyWeight * latency) / this.latencyReference;
  }

  private readonly policy: StepPolicy = { decide: (state, choiceCount) => this.ensureAgent().decide(state, choiceCount) };

  private ensureAgent(): LayerwiseAgent {
    if (this.agent !== undefined) return this.agent;
    const { options } = this;
    const warmupEpisodes = options.warmupEpisodes ?? Math.floor(options.trials / 4);
    if (options.agent === 'ddpg') {
      this.agent = new DdpgAgent(stateSize, {
        hiddenUnits: options.hiddenUnits,
        actorLearningRate: options.actorLearningRate ?? agentOptionDefaults.actorLearningRate,
        criticLearningRate: options.criticLearningRate ?? agentOptionDefaults.criticLearningRate,
        batchSize: options.batchSize ?? agentOptionDefaults.batchSize,
        bufferSize: options.bufferSize ?? agentOptionDefaults.bufferSize,
        warmupEpisodes,
        initialNoise: options.noise ?? agentOptionDefaults.noise,
        noiseDecay: options.noiseDecay ?? agentOptionDefaults.noiseDecay,
        baselineDecay: options.baselineDecay,
        seed: this.seed,
      });
    } else {
      const counts = this.planner.choiceCounts;
      const maxChoices = Math.max(2, ...counts.map((count) => count ?? 2));
      this.agent = new ReinforceAgent(stateSize, maxChoices, {
        hiddenUnits: options.hiddenUnits,
        learningRate: options.learningRate ?? agentOptionDefaults.learningRate,
        warmupEpisodes,
        entropyWeight: options.entropyWeight ?? agentOptionDefaults.entropyWeight,
        baselineDecay: options.baselineDecay,
        seed: this.seed,
      });
    }
    return this.agent;
  }

  private checkpoint(): JsonValue {
    return {
      agentKind: this.options.agent,
      parameters: this.space.map((descriptor) => descriptor.name),
      seed: this.seed,
      random: [...this.random.state],
      latencyReference: this.latencyReference ?? null,
      agent: this.agent?.toJson() ?? null,
    };
  }

  /** Loads the study's checkpoint the first time this sampler works on that study. */
  private restore(study: Study): void {
    if (this.restoredStudyId === study.studyId) return;
    this.restoredStudyId = study.studyId;
    const saved = study.storage.getStudy(study.studyId).systemAttrs[agentCheckpointSystemAttrKey] as Record<string, JsonValue> | undefined;
    if (saved === undefined) return;
    const names = this.space.map((descriptor) => descriptor.name);
    const savedNames = saved.parameters as string[];
    if (saved.agentKind !== this.options.agent || JSON.stringify(savedNames) !== JSON.stringify(names)) {
      throw new ConfigError(
        `Study "${study.studyName}" holds a search-rl ${String(saved.agentKind)} agent over ${savedNames.length} parameters, not a ${this.options.agent} agent over these ${names.length}: resume it with the same agent and passes, or start a new study.`,
      );
    }
    this.random = SeededRandom.fromState(saved.random as unknown as SeededRandomState);
    this.latencyReference = typeof saved.latencyReference === 'number' ? saved.latencyReference : this.options.latencyReference;
    if (saved.agent !== null && saved.agent !== undefined) {
      // The agent is rebuilt as configured, then takes the saved weights, buffer and random state.
      this.ensureAgent().loadJson(saved.agent);
    }
  }
}

function noEstimate(): never {
  throw new ConfigError('search-rl: a plan asked for a cost estimate without a cost model (an internal inconsistency).');
}
