import {
  createStudy as createCoreStudy,
  loadStudy as loadCoreStudy,
  type CreateSearchStudyOptions as CoreCreateSearchStudyOptions,
  type SearchStudyOptions as CoreSearchStudyOptions,
  type StudyStorage,
  type Study,
} from '@open-autoglm/core';
import { MedianPruner } from './pruners/MedianPruner.js';
import { TPESampler } from './samplers/TPESampler.js';

/** Core's study options with Optuna's defaults filled in: a TPE sampler and a median pruner. */
export interface SearchStudyOptions extends Omit<CoreSearchStudyOptions, 'sampler'> {
  /** Proposes the parameters [a TPESampler, unseeded]. */
  readonly sampler?: CoreSearchStudyOptions['sampler'];
  /** Stops unpromising trials on `trial.shouldPrune()` [a MedianPruner]. */
  readonly pruner?: CoreSearchStudyOptions['pruner'];
}

export interface CreateSearchStudyOptions extends Omit<CoreCreateSearchStudyOptions, 'sampler' | 'pruner'>, SearchStudyOptions {}

export interface LoadSearchStudyOptions extends SearchStudyOptions {
  readonly studyName: string;
  readonly storage: StudyStorage;
}

/**
 * Core's `createStudy` (Optuna's `create_study`) with Optuna's defaults: a TPE sampler and a
 * median pruner unless given. With `loadIfExists`, resumes the study of that name.
 */
export function createStudy(options: CreateSearchStudyOptions): Study {
  return createCoreStudy({ ...options, ...withDefaults(options) });
}

/** Core's `loadStudy` (Optuna's `load_study`) with the same defaults as `createStudy`. */
export function loadStudy(options: LoadSearchStudyOptions): Study {
  return loadCoreStudy({ ...options, ...withDefaults(options) });
}

function withDefaults(options: SearchStudyOptions): Pick<CoreSearchStudyOptions, 'sampler' | 'pruner'> {
  return { sampler: options.sampler ?? new TPESampler(), pruner: options.pruner ?? new MedianPruner() };
}
