import type { Logger } from '../contracts/Logger.js';
import type { StudyDirection } from '../contracts/Study.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { ConfigError } from '../errors/errors.js';

/** The user attribute that says which config a study was run with; written last, so a study that has it is whole. */
const fingerprintAttr = 'config_fingerprint';

export interface PrepareRecordStudyOptions {
  /** The study's name in the record. */
  readonly studyName: string;
  /** Continue the study found under `studyName` instead of replacing it. */
  readonly resume: boolean;
  readonly directions: readonly StudyDirection[];
  /** The objectives' metric names, for readers of the record (Optuna's dashboard). */
  readonly metrics: readonly string[];
  /** What must not change between a run and its resumption. */
  readonly fingerprint: string;
  readonly logger: Logger;
}

/**
 * The record's study for a run: a new one (replacing a previous run's), or, when resuming, the
 * one found by name and checked against the config. A study is created in three writes (the
 * study, then its attributes): a run killed between them had run no trial, so resuming it starts
 * it afresh rather than calling its config changed.
 */
export function prepareRecordStudy(record: StudyStorage, options: PrepareRecordStudyOptions): number {
  const existing = record.getStudyIdFromName(options.studyName);
  if (options.resume) {
    if (existing === undefined) {
      throw new ConfigError(`There is no run to resume in this output folder (its study.db holds no "${options.studyName}" study). Run without --resume to start one.`);
    }
    const stored = record.getStudy(existing);
    if (stored.userAttrs[fingerprintAttr] === undefined && record.getAllTrials(existing).length === 0) {
      options.logger.warn('the run to resume was stopped while creating its study, before any trial; starting it afresh', { study: options.studyName });
      record.deleteStudy(existing);
      return createRecordStudy(record, options);
    }
    if (stored.userAttrs[fingerprintAttr] !== options.fingerprint || stored.directions.join() !== options.directions.join()) {
      throw new ConfigError(
        'The config changed since the run in this output folder began (model, target, objectives, search or passes): resuming needs the same config. ' +
          'Restore the config, or run without --resume to start over (the old study is replaced).',
      );
    }
    return existing;
  }
  if (existing !== undefined) {
    options.logger.warn('replacing the previous run in the output folder', { study: options.studyName });
    record.deleteStudy(existing);
  }
  return createRecordStudy(record, options);
}

function createRecordStudy(record: StudyStorage, options: PrepareRecordStudyOptions): number {
  const id = record.createStudy(options.studyName, options.directions);
  record.setStudyUserAttr(id, 'metrics', [...options.metrics]);
  record.setStudyUserAttr(id, fingerprintAttr, options.fingerprint);
  return id;
}
