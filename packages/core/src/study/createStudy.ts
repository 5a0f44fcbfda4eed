import { randomUUID } from 'node:crypto';
import type { Sampler } from '../contracts/Sampler.js';
import type { CreateStudyOptions, Study, StudyDirection } from '../contracts/Study.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import type { TrialPruner } from '../contracts/TrialPruner.js';
import { ConfigError } from '../errors/errors.js';
import { InMemoryStorage } from './InMemoryStorage.js';
import { NopPruner } from './NopPruner.js';
import { retryInterruptedTrials, type InterruptedTrialHandling } from './retryInterruptedTrials.js';
import { SearchStudy, type ConstraintsFunction } from './SearchStudy.js';

/**
 * How a study samples and prunes. The sampler is the strategy plugin's own (core has no default
 * model-based sampler); `@open-autoglm/search-bayes`'s `createStudy` defaults it to TPE.
 */
export interface SearchStudyOptions {
  /** Proposes the parameters. */
  readonly sampler: Sampler;
  /** Stops unpromising trials on `trial.shouldPrune()` [a NopPruner: never]. */
  readonly pruner?: TrialPruner;
  /**
   * Computes each complete or pruned trial's constraint values when it is told, unless the
   * trial set them itself (`trial.setConstraints`); feasible when every value is <= 0.
   */
  readonly constraintsFunction?: ConstraintsFunction;
}

export interface CreateSearchStudyOptions extends CreateStudyOptions, SearchStudyOptions {
  /**
   * With `loadIfExists`, what happens to trials the previous process left `running` ['retry':
   * each is failed and its parameters queued again, so the next `ask` re-runs it]. The default
   * assumes this process is the study's only worker; pass 'keep' when other live processes
   * share the study.
   */
  readonly interruptedTrials?: InterruptedTrialHandling;
}

export interface LoadSearchStudyOptions extends SearchStudyOptions {
  readonly studyName: string;
  readonly storage: StudyStorage;
}

const knownDirections: readonly StudyDirection[] = ['minimize', 'maximize'];

/**
 * Creates a study (Optuna's `create_study`), or with `loadIfExists` resumes the study of that
 * name in `storage`, whose directions must then be the same; trials left running by the process
 * that stopped are handled as `interruptedTrials` says (re-queued by default).
 */
export function createStudy(options: CreateSearchStudyOptions): Study {
  const { directions } = options;
  if (!Array.isArray(directions) || directions.length === 0) {
    throw new ConfigError('createStudy needs directions: give one per objective, e.g. ["minimize"] or ["maximize", "minimize"].');
  }
  for (const direction of directions) {
    if (!knownDirections.includes(direction)) {
      throw new ConfigError(`createStudy: unknown direction ${JSON.stringify(direction)}; use "minimize" or "maximize".`);
    }
  }
  const storage = options.storage ?? new InMemoryStorage();
  const studyName = options.studyName ?? `no-name-${randomUUID()}`;
  const existing = storage.getStudyIdFromName(studyName);
  if (existing !== undefined) {
    if (options.loadIfExists !== true) {
      throw new ConfigError(`A study named "${studyName}" already exists in this storage: pass loadIfExists: true to resume it, or choose another name.`);
    }
    const stored = storage.getStudy(existing).directions;
    if (stored.length !== directions.length || stored.some((direction, i) => direction !== directions[i])) {
      throw new ConfigError(
        `Study "${studyName}" was created with directions [${stored.join(', ')}], not [${directions.join(', ')}]: resume it with its own directions, or choose another name.`,
      );
    }
    retryInterruptedTrials(storage, existing, options.interruptedTrials ?? 'retry');
    return newStudy(storage, existing, studyName, stored, options);
  }
  return newStudy(storage, storage.createStudy(studyName, directions), studyName, directions, options);
}

/** Opens an existing study by name (Optuna's `load_study`), for example to resume it after a restart. */
export function loadStudy(options: LoadSearchStudyOptions): Study {
  const studyId = options.storage.getStudyIdFromName(options.studyName);
  if (studyId === undefined) {
    const names = options.storage.getAllStudies().map((study) => `"${study.studyName}"`);
    throw new ConfigError(`No study named "${options.studyName}" in this storage (it has ${names.length === 0 ? 'none' : names.join(', ')}): create it with createStudy.`);
  }
  return newStudy(options.storage, studyId, options.studyName, options.storage.getStudy(studyId).directions, options);
}

function newStudy(storage: StudyStorage, studyId: number, studyName: string, directions: readonly StudyDirection[], options: SearchStudyOptions): Study {
  return new SearchStudy(
    storage,
    studyId,
    studyName,
    directions,
    options.sampler,
    options.pruner ?? new NopPruner(),
    options.constraintsFunction,
  );
}
