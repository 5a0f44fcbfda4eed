import type { JsonValue } from '@open-autoglm/core';
import type { StepDecision, StepPolicy } from './EpisodePlanner.js';

/** A learning controller: decides each step of an episode, then learns from the episode's reward. */
export interface LayerwiseAgent extends StepPolicy {
  /** Episodes learned from so far. */
  readonly episodes: number;
  /** Learns from one finished episode (its clipped decisions) and the reward of its plan. */
  learn(decisions: readonly StepDecision[], reward: number): void;
  /** Everything needed to continue learning exactly: weights, optimizer moments, buffer, noise, baseline, random state. */
  toJson(): JsonValue;
  /** Restores a state saved by `toJson` of an agent built with the same options. */
  loadJson(json: JsonValue): void;
  /** Frees the networks' tensors. */
  dispose(): void;
}
