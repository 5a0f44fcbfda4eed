import { ConfigError, RandomSampler, type Study, type StudyDirection, type TrialPruner } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { MedianPruner, percentile } from './MedianPruner.js';
import { createStudy } from '../createStudy.js';

// Three finished learning curves (loss by epoch).
const curves = [
  [1, 0.8, 0.6, 0.5, 0.4],
  [2, 1.5, 1.2, 1, 0.9],
  [0.5, 0.4, 0.3, 0.2, 0.1],
];

function studyWithCurves(pruner: TrialPruner, direction: StudyDirection = 'minimize'): Study {
  const study = createStudy({ directions: [direction], sampler: new RandomSampler({ seed: 0 }), pruner });
  for (const curve of curves) {
    const trial = study.ask();
    curve.forEach((value, step) => trial.report(value, step));
    study.tell(trial, curve.at(-1) as number);
  }
  return study;
}

/** Reports `values` at steps 0, 1, ... and returns shouldPrune after the last one. */
function pruneAfter(study: Study, values: number[]): boolean {
  const trial = study.ask();
  values.forEach((value, step) => trial.report(value, step));
  return trial.shouldPrune();
}

describe('MedianPruner', () => {
  it('should prune a trial whose best value so far is worse than the median at its step', () => {
    // Step 1: the complete trials reported 0.8, 1.5, 0.4; median 0.8.
    const study = studyWithCurves(new MedianPruner({ startupTrials: 3 }));
    expect(pruneAfter(study, [0.9, 0.85])).toBe(true); // best 0.85 > 0.8
    expect(pruneAfter(study, [0.9, 0.7])).toBe(false); // best 0.7 < 0.8
    expect(pruneAfter(study, [0.75, 0.9])).toBe(false); // best over steps counts: 0.75
    expect(pruneAfter(study, [Number.NaN])).toBe(true); // only NaN: diverged
  });

  it('should flip the comparison when maximizing', () => {
    // Maximizing accuracy-like values: median at step 1 is still 0.8; best so far is the maximum.
    const study = studyWithCurves(new MedianPruner({ startupTrials: 3 }), 'maximize');
    expect(pruneAfter(study, [0.9, 0.7])).toBe(false); // best 0.9 > 0.8
    expect(pruneAfter(study, [0.6, 0.7])).toBe(true);
  });

  it('should wait for start-up trials, warm-up steps and the interval', () => {
    expect(pruneAfter(studyWithCurves(new MedianPruner({ startupTrials: 4 })), [5, 5])).toBe(false);
    expect(pruneAfter(studyWithCurves(new MedianPruner({ startupTrials: 0, warmupSteps: 2 })), [5, 5])).toBe(false);
    expect(pruneAfter(studyWithCurves(new MedianPruner({ startupTrials: 0, warmupSteps: 2 })), [5, 5, 5])).toBe(true);
    // Interval 2 from step 0: steps 0, 2, 4 are pruning steps; step 1 follows a report in its interval.
    const interval = studyWithCurves(new MedianPruner({ startupTrials: 0, intervalSteps: 2 }));
    expect(pruneAfter(interval, [5, 5])).toBe(false);
    expect(pruneAfter(interval, [5, 5, 5])).toBe(true);
    expect(pruneAfter(studyWithCurves(new MedianPruner({ startupTrials: 0, minTrials: 4 })), [5, 5])).toBe(false);
  });

  it('should refuse bad options', () => {
    expect(() => new MedianPruner({ intervalSteps: 0 })).toThrow(ConfigError);
    expect(() => new MedianPruner({ startupTrials: -1 })).toThrow(/startupTrials must be an integer >= 0/);
  });
});

describe('percentile', () => {
  it('should interpolate linearly between order statistics like numpy, ignoring NaN', () => {
    expect(percentile([0.8, 1.5, 0.4], 50)).toBe(0.8);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, Number.NaN], 25)).toBe(1.75);
    expect(percentile([], 50)).toBeNaN();
  });
});
