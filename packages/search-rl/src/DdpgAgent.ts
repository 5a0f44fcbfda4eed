import { SeededRandom, type JsonValue, type SeededRandomState } from '@open-autoglm/core';
import { AdamOptimizer } from './AdamOptimizer.js';
import type { StepDecision } from './EpisodePlanner.js';
import { decodeFloat32Base64, encodeFloat32Base64 } from './float32Base64.js';
import type { LayerwiseAgent } from './LayerwiseAgent.js';
import { Mlp } from './Mlp.js';
import { tf } from './tensorflow.js';
import { truncatedNormal } from './truncatedNormal.js';

export interface DdpgAgentOptions {
  /** Units in each of the two hidden layers of the actor and the critic. */
  readonly hiddenUnits: number;
  readonly actorLearningRate: number;
  readonly criticLearningRate: number;
  /** Transitions per update. */
  readonly batchSize: number;
  /** Transitions the replay buffer keeps (the oldest are dropped). */
  readonly bufferSize: number;
  /** Episodes of uniformly random actions before the actor takes over (and learning starts). */
  readonly warmupEpisodes: number;
  /** Standard deviation of the truncated-normal exploration noise in the first episode after the warm-up. */
  readonly initialNoise: number;
  /** The noise's factor per episode after the warm-up. */
  readonly noiseDecay: number;
  /** Weight of the past in the moving-average reward baseline. */
  readonly baselineDecay: number;
  readonly seed: number;
}

/**
 * AMC's DDPG agent for continuous actions in [0, 1] (a pruning ratio's position in its range).
 * The reward comes once, at the end of an episode, and every step of the episode is credited
 * with it, so the critic learns Q(s, a) = E[reward | s, a] directly (AMC's setting; with no
 * bootstrapping there is no need for target networks). Rewards are centred by a moving-average
 * baseline and scaled by the buffer's standard deviation, because accuracies of nearby plans
 * differ by fractions of a percent. Exploration adds truncated-normal noise whose width decays
 * per episode.
 */
export class DdpgAgent implements LayerwiseAgent {
  private random: SeededRandom;
  private readonly actor: Mlp;
  private readonly critic: Mlp;
  private readonly actorOptimizer: AdamOptimizer;
  private readonly criticOptimizer: AdamOptimizer;
  private bufferStates: number[][] = [];
  private bufferActions: number[] = [];
  private bufferRewards: number[] = [];
  private bufferNext = 0;
  private baseline: number | undefined;
  private episodeCount = 0;

  constructor(
    private readonly stateSize: number,
    private readonly options: DdpgAgentOptions,
  ) {
    this.random = new SeededRandom(options.seed);
    this.actor = new Mlp([stateSize, options.hiddenUnits, options.hiddenUnits, 1], this.random, 3e-3);
    this.critic = new Mlp([stateSize + 1, options.hiddenUnits, options.hiddenUnits, 1], this.random, 3e-3);
    this.actorOptimizer = new AdamOptimizer(this.actor.variables, options.actorLearningRate);
    this.criticOptimizer = new AdamOptimizer(this.critic.variables, options.criticLearningRate);
  }

  get episodes(): number {
    return this.episodeCount;
  }

  /** The exploration noise of the current episode (0 during the warm-up, which is uniform). */
  get noise(): number {
    const { warmupEpisodes, initialNoise, noiseDecay } = this.options;
    return this.episodeCount < warmupEpisodes ? 0 : initialNoise * noiseDecay ** (this.episodeCount - warmupEpisodes);
  }

  decide(state: readonly number[], choiceCount: number | undefined): number {
    const position = this.episodeCount < this.options.warmupEpisodes ? this.random.nextFloat() : truncatedNormal(this.random, this.greedyPosition(state), this.noise, 0, 1);
    return choiceCount === undefined ? position : Math.round(position * (choiceCount - 1));
  }

  /** The actor's action for `state`, without noise. */
  greedyPosition(state: readonly number[]): number {
    return tf.tidy(() => tf.sigmoid(this.actor.apply(tf.tensor2d([toFloat32(state)]))).dataSync()[0] as number);
  }

  learn(decisions: readonly StepDecision[], reward: number): void {
    for (const decision of decisions) this.remember(decision.state, decision.position, reward);
    this.baseline = this.baseline === undefined ? reward : this.options.baselineDecay * this.baseline + (1 - this.options.baselineDecay) * reward;
    this.episodeCount++;
    if (this.episodeCount < this.options.warmupEpisodes) return;
    // One minibatch update per decision of the episode, as AMC does.
    for (let i = 0; i < decisions.length; i++) this.update();
  }

  private remember(state: readonly number[], position: number, reward: number): void {
    // Stored as float32, as the networks see them, so that a checkpointed buffer is exact.
    const entry = toFloat32(state);
    if (this.bufferStates.length < this.options.bufferSize) {
      this.bufferStates.push(entry);
      this.bufferActions.push(Math.fround(position));
      this.bufferRewards.push(reward);
    } else {
      this.bufferStates[this.bufferNext] = entry;
      this.bufferActions[this.bufferNext] = Math.fround(position);
      this.bufferRewards[this.bufferNext] = reward;
      this.bufferNext = (this.bufferNext + 1) % this.options.bufferSize;
    }
  }

  private update(): void {
    const size = this.bufferStates.length;
    const batch = Array.from({ length: Math.min(this.options.batchSize, size) }, () => this.random.nextInt(size));
    const baseline = this.baseline ?? 0;
    let variance = 0;
    for (const reward of this.bufferRewards) variance += (reward - baseline) ** 2;
    const scale = Math.sqrt(variance / size) + 1e-8;
    tf.tidy(() => {
      const states = tf.tensor2d(batch.map((i) => this.bufferStates[i] as number[]));
      const actions = tf.tensor2d(batch.map((i) => [this.bufferActions[i] as number]));
      const targets = tf.tensor2d(batch.map((i) => [((this.bufferRewards[i] as number) - baseline) / scale]));
      this.criticOptimizer.minimize(() => tf.mean(tf.square(tf.sub(this.critic.apply(tf.concat([states, actions], 1)), targets))) as tf.Scalar);
      this.actorOptimizer.minimize(() => tf.neg(tf.mean(this.critic.apply(tf.concat([states, tf.sigmoid(this.actor.apply(states))], 1)))) as tf.Scalar);
    });
  }

  toJson(): JsonValue {
    return {
      kind: 'ddpg',
      stateSize: this.stateSize,
      episodes: this.episodeCount,
      random: [...this.random.state],
      baseline: this.baseline ?? null,
      actor: this.actor.toJson(),
      critic: this.critic.toJson(),
      actorOptimizer: this.actorOptimizer.toJson(),
      criticOptimizer: this.criticOptimizer.toJson(),
      buffer: {
        states: encodeFloat32Base64(this.bufferStates.flat()),
        actions: encodeFloat32Base64(this.bufferActions),
        rewards: this.bufferRewards,
        next: this.bufferNext,
      },
    };
  }

  loadJson(json: JsonValue): void {
    const saved = json as Record<string, JsonValue>;
    if (saved.kind !== 'ddpg' || saved.stateSize !== this.stateSize) throw new RangeError(`Expected a saved DDPG agent over ${this.stateSize} state features`);
    const buffer = saved.buffer as { states: string; actions: string; rewards: number[]; next: number };
    this.actor.loadJson(saved.actor as JsonValue);
    this.critic.loadJson(saved.critic as JsonValue);
    this.actorOptimizer.loadJson(saved.actorOptimizer as JsonValue);
    this.criticOptimizer.loadJson(saved.criticOptimizer as JsonValue);
    const states = decodeFloat32Base64(buffer.states);
    this.bufferStates = Array.from({ length: buffer.rewards.length }, (_, i) => Array.from(states.subarray(i * this.stateSize, (i + 1) * this.stateSize)));
    this.bufferActions = Array.from(decodeFloat32Base64(buffer.actions));
    this.bufferRewards = [...buffer.rewards];
    this.bufferNext = buffer.next;
    this.baseline = typeof saved.baseline === 'number' ? saved.baseline : undefined;
    this.episodeCount = saved.episodes as number;
    this.random = SeededRandom.fromState(saved.random as unknown as SeededRandomState);
  }

  dispose(): void {
    this.actor.dispose();
    this.critic.dispose();
    this.actorOptimizer.dispose();
    this.criticOptimizer.dispose();
  }
}

function toFloat32(values: readonly number[]): number[] {
  return values.map((value) => Math.fround(value));
}
