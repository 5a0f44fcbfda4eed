import { ConfigError, SeededRandom, type JsonValue, type SeededRandomState } from '@open-autoglm/core';
import { AdamOptimizer } from './AdamOptimizer.js';
import type { StepDecision } from './EpisodePlanner.js';
import type { LayerwiseAgent } from './LayerwiseAgent.js';
import { Mlp } from './Mlp.js';
import { tf } from './tensorflow.js';

export interface ReinforceAgentOptions {
  readonly hiddenUnits: number;
  readonly learningRate: number;
  /** Episodes of uniformly random choices before the policy takes over (and learning starts). */
  readonly warmupEpisodes: number;
  /** Weight of the policy's entropy in the loss (keeps it exploring early on). */
  readonly entropyWeight: number;
  /** Weight of the past in the moving-average reward baseline. */
  readonly baselineDecay: number;
  readonly seed: number;
}

// Logit added to choices a step does not have, so that they get no probability.
const maskedLogit = -1e9;

/**
 * A REINFORCE controller over discrete choices per step (HAQ-style: int8 or float per layer, a
 * ratio from a grid): a policy network maps the step's state to logits over the step's choices
 * (the widest step sets the output size; narrower steps mask the rest). After each episode it
 * takes one policy-gradient step on -(reward - baseline) / scale * sum log p(choice), with a
 * moving-average baseline and a moving scale of the advantage, plus an entropy bonus. The
 * log-probability is the proposed choice's: budget clipping belongs to the environment.
 */
export class ReinforceAgent implements LayerwiseAgent {
  private random: SeededRandom;
  private readonly policy: Mlp;
  private readonly optimizer: AdamOptimizer;
  private baseline: number | undefined;
  private advantageScale: number | undefined;
  private episodeCount = 0;

  constructor(
    private readonly stateSize: number,
    private readonly maxChoices: number,
    private readonly options: ReinforceAgentOptions,
  ) {
    this.random = new SeededRandom(options.seed);
    this.policy = new Mlp([stateSize, options.hiddenUnits, options.hiddenUnits, maxChoices], this.random, 3e-3);
    this.optimizer = new AdamOptimizer(this.policy.variables, options.learningRate);
  }

  get episodes(): number {
    return this.episodeCount;
  }

  decide(state: readonly number[], choiceCount: number | undefined): number {
    if (choiceCount === undefined || choiceCount > this.maxChoices) {
      throw new ConfigError(`The REINFORCE agent decides among at most ${this.maxChoices} choices per step; it was asked for ${choiceCount ?? 'a continuous action'}.`);
    }
    if (this.episodeCount < this.options.warmupEpisodes) return this.random.nextInt(choiceCount);
    const probabilities = this.probabilities(state, choiceCount);
    let u = this.random.nextFloat();
    for (let k = 0; k < choiceCount; k++) {
      u -= probabilities[k] as number;
      if (u < 0) return k;
    }
    return choiceCount - 1;
  }

  /** The policy's probabilities over a step's `choiceCount` choices. */
  probabilities(state: readonly number[], choiceCount: number): number[] {
    return tf.tidy(() => Array.from(tf.softmax(tf.add(this.policy.apply(tf.tensor2d([state.map(Math.fround)])), tf.tensor2d([mask(choiceCount, this.maxChoices)]))).dataSync()));
  }

  learn(decisions: readonly StepDecision[], reward: number): void {
    const { baselineDecay } = this.options;
    const baseline = this.baseline ?? reward;
    const advantage = reward - baseline;
    this.advantageScale = this.advantageScale === undefined ? Math.abs(advantage) : baselineDecay * this.advantageScale + (1 - baselineDecay) * Math.abs(advantage);
    this.baseline = baselineDecay * baseline + (1 - baselineDecay) * reward;
    this.episodeCount++;
    if (this.episodeCount <= this.options.warmupEpisodes || this.advantageScale === 0) return;
    const scaled = advantage / (this.advantageScale + 1e-8);
    tf.tidy(() => {
      const states = tf.tensor2d(decisions.map((decision) => decision.state.map(Math.fround)));
      const masks = tf.tensor2d(decisions.map((decision) => mask(decision.choiceCount ?? 1, this.maxChoices)));
      const chosen = tf.oneHot(tf.tensor1d(decisions.map((decision) => decision.proposedIndex ?? decision.index ?? 0), 'int32'), this.maxChoices);
      this.optimizer.minimize(() => {
        const logProbabilities = tf.logSoftmax(tf.add(this.policy.apply(states), masks));
        const chosenLogProbability = tf.sum(tf.mul(logProbabilities, chosen));
        const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logProbabilities), tf.maximum(logProbabilities, -30))));
        return tf.neg(tf.add(tf.mul(chosenLogProbability, scaled), tf.mul(entropy, this.options.entropyWeight))).div(decisions.length) as tf.Scalar;
      });
    });
  }

  toJson(): JsonValue {
    return {
      kind: 'reinforce',
      stateSize: this.stateSize,
      maxChoices: this.maxChoices,
      episodes: this.episodeCount,
      random: [...this.random.state],
      baseline: this.baseline ?? null,
      advantageScale: this.advantageScale ?? null,
      policy: this.policy.toJson(),
      optimizer: this.optimizer.toJson(),
    };
  }

  loadJson(json: JsonValue): void {
    const saved = json as Record<string, JsonValue>;
    if (saved.kind !== 'reinforce' || saved.stateSize !== this.stateSize || saved.maxChoices !== this.maxChoices) {
      throw new RangeError(`Expected a saved REINFORCE agent over ${this.stateSize} state features and ${this.maxChoices} choices`);
    }
    this.policy.loadJson(saved.policy as JsonValue);
    this.optimizer.loadJson(saved.optimizer as JsonValue);
    this.baseline = typeof saved.baseline === 'number' ? saved.baseline : undefined;
    this.advantageScale = typeof saved.advantageScale === 'number' ? saved.advantageScale : undefined;
    this.episodeCount = saved.episodes as number;
    this.random = SeededRandom.fromState(saved.random as unknown as SeededRandomState);
  }

  dispose(): void {
    this.policy.dispose();
    this.optimizer.dispose();
  }
}

function mask(choiceCount: number, maxChoices: number): number[] {
  return Array.from({ length: maxChoices }, (_, k) => (k < choiceCount ? 0 : maskedLogit));
}
