import {
  optimizeStudy,
  type FrozenTrial,
  type JsonValue,
  type OptimizeOptions,
  type ParameterDistribution,
  type Study,
  type StudyDirection,
  type StudyObjective,
  type StudyStorage,
  type TellResult,
  type Trial,
  type TrialParams,
  type TrialPruner,
  type TrialState,
} from '@open-autoglm/core';
import type { LayerwiseSampler } from './LayerwiseSampler.js';

/**
 * A study sampled by a `LayerwiseSampler`: core's study, plus `prepareTrial`, which plans the
 * next episode against the asynchronous cost model. `optimize` awaits it before every `ask`;
 * callers that ask and tell themselves await it too (`await study.prepareTrial(); study.ask()`).
 */
export class LayerwiseStudy implements Study {
  constructor(
    private readonly inner: Study,
    readonly sampler: LayerwiseSampler,
  ) {}

  get studyName(): string {
    return this.inner.studyName;
  }
  get studyId(): number {
    return this.inner.studyId;
  }
  get directions(): readonly StudyDirection[] {
    return this.inner.directions;
  }
  get pruner(): TrialPruner {
    return this.inner.pruner;
  }
  get storage(): StudyStorage {
    return this.inner.storage;
  }
  get trials(): readonly FrozenTrial[] {
    return this.inner.trials;
  }
  get bestTrial(): FrozenTrial {
    return this.inner.bestTrial;
  }
  get bestTrials(): readonly FrozenTrial[] {
    return this.inner.bestTrials;
  }
  get userAttrs(): Readonly<Record<string, JsonValue>> {
    return this.inner.userAttrs;
  }

  getTrials(options?: { readonly states?: readonly TrialState[] }): readonly FrozenTrial[] {
    return this.inner.getTrials(options);
  }

  setUserAttr(key: string, value: JsonValue): void {
    this.inner.setUserAttr(key, value);
  }

  /** Plans the next episode within the budget; await it before `ask`. */
  prepareTrial(): Promise<void> {
    return this.sampler.prepareTrial(this.inner);
  }

  /** Starts a trial with every parameter of the search space suggested (plus `fixedDistributions`), so that `trial.params` is the whole plan. */
  ask(fixedDistributions: Readonly<Record<string, ParameterDistribution>> = {}): Trial {
    return this.inner.ask({ ...this.sampler.distributions, ...fixedDistributions });
  }

  tell(trial: Trial | number, result: TellResult): FrozenTrial {
    return this.inner.tell(trial, result);
  }

  enqueueTrial(params: TrialParams, options?: { readonly userAttrs?: Readonly<Record<string, JsonValue>> }): void {
    this.inner.enqueueTrial(params, options);
  }

  /** core's `optimize` loop, which awaits `prepareTrial` before every `ask`. */
  optimize(objective: StudyObjective, options: OptimizeOptions): Promise<void> {
    return optimizeStudy(this, objective, options);
  }
}
