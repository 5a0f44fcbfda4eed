import {
  ConfigError,
  failReasonSystemAttrKey,
  isFinishedTrialState,
  isTrialPruned,
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

  /** core's `optimize` loop (same budget, catch and callback rules), planning each episode before its `ask`. */
  async optimize(objective: StudyObjective, options: OptimizeOptions): Promise<void> {
    const { trials, timeoutMs } = options;
    if (trials === undefined && timeoutMs === undefined) throw new ConfigError('study.optimize needs a budget: give trials, timeoutMs, or both.');
    if (trials !== undefined && (!Number.isInteger(trials) || trials < 0)) throw new ConfigError(`study.optimize: trials must be an integer >= 0, not ${trials}.`);
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new ConfigError(`study.optimize: timeoutMs must be a number >= 0, not ${timeoutMs}.`);
    const started = performance.now();
    for (let done = 0; trials === undefined || done < trials; done++) {
      if (timeoutMs !== undefined && performance.now() - started >= timeoutMs) break;
      await this.prepareTrial();
      const trial = this.ask();
      let finished: FrozenTrial;
      try {
        finished = this.tell(trial, await objective(trial));
      } catch (error) {
        const current = this.storage.getTrial(trial.trialId);
        if (isFinishedTrialState(current.state)) throw error; // tell itself refused the result
        if (isTrialPruned(error)) {
          finished = this.tell(trial, 'pruned');
        } else {
          this.storage.setTrialSystemAttr(trial.trialId, failReasonSystemAttrKey, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
          finished = this.tell(trial, 'failed');
          if (!(options.catch ?? []).some((errorClass) => error instanceof errorClass)) throw error;
        }
      }
      for (const callback of options.callbacks ?? []) callback(this, finished);
    }
  }
}
