import type { FrozenTrial, JsonValue, StudyStorage } from '@open-autoglm/core';

import { distributionToOptunaJson } from '../optunaDistribution.js';

/**
 * Every study of `storage` in the canonical form `dumpStudiesScript` prints from Python Optuna, so
 * the two can be compared with one deep equality: non-finite numbers as strings, datetimes as local
 * `YYYY-MM-DD HH:MM:SS.mmm`, distributions as the parsed JSON Optuna's `distribution_to_json` writes.
 */
export function canonicalStudies(storage: StudyStorage): JsonValue {
  return storage.getAllStudies().map((study) => ({
    name: study.studyName,
    directions: [...study.directions],
    userAttrs: plain(study.userAttrs),
    systemAttrs: plain(study.systemAttrs),
    trials: storage.getAllTrials(study.studyId).map(canonicalTrial),
  }));
}

function canonicalTrial(trial: FrozenTrial): JsonValue {
  return {
    number: trial.number,
    state: trial.state,
    values: trial.values === undefined ? null : trial.values.map(plainNumber),
    params: plain(trial.params),
    distributions: Object.fromEntries(Object.entries(trial.distributions).map(([name, distribution]) => [name, JSON.parse(distributionToOptunaJson(distribution)) as JsonValue])),
    intermediateValues: Object.fromEntries([...trial.intermediateValues].map(([step, value]) => [String(step), plainNumber(value)])),
    userAttrs: plain(trial.userAttrs),
    systemAttrs: plain(trial.systemAttrs),
    datetimeStart: trial.datetimeStart === undefined ? null : localMilliseconds(trial.datetimeStart),
    datetimeComplete: trial.datetimeComplete === undefined ? null : localMilliseconds(trial.datetimeComplete),
  };
}

function plainNumber(value: number): JsonValue {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

function plain(value: JsonValue): JsonValue {
  if (typeof value === 'number') return plainNumber(value);
  if (Array.isArray(value)) return (value as readonly JsonValue[]).map(plain);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, plain(member)]));
  return value;
}

function localMilliseconds(date: Date): string {
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  return (
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  );
}
