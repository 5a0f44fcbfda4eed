import { ConfigError } from '@open-autoglm/core';

/**
 * A learning-rate schedule over update steps. `step` counts updates from 1 (the `step` input of
 * a training step); `t = step - 1` is the number of updates already done, which is what
 * PyTorch's schedulers count.
 *
 * - `constant`: `lr`.
 * - `step` (PyTorch StepLR counted in updates): `lr * gamma^floor(t / stepSize)`.
 * - `cosine` (PyTorch CosineAnnealingLR, closed form): `minLr + (lr - minLr) (1 + cos(pi t / T)) / 2`
 *   with `T = totalSteps`, held at `minLr` after T.
 *
 * Any schedule may start with `warmupSteps` of linear warm-up: update `step <= warmupSteps` uses
 * `lr * step / warmupSteps` (never 0), and the schedule proper then runs with `t` counted from
 * the end of the warm-up (so a cosine decays over `totalSteps - warmupSteps` updates).
 */
export type LearningRateSchedule =
  | { readonly kind: 'constant'; readonly lr: number; readonly warmupSteps?: number }
  | { readonly kind: 'step'; readonly lr: number; readonly stepSize: number; readonly gamma?: number; readonly warmupSteps?: number }
  | { readonly kind: 'cosine'; readonly lr: number; readonly totalSteps: number; readonly minLr?: number; readonly warmupSteps?: number };

/** The learning rate of update `step` (1-based) under `schedule`. Pure; throws ConfigError on invalid input. */
export function learningRateAt(step: number, schedule: LearningRateSchedule): number {
  if (!Number.isInteger(step) || step < 1) {
    throw new ConfigError(`learningRateAt: step must be an integer >= 1 (the 1-based update number), got ${step}.`);
  }
  if (!(schedule.lr >= 0) || !Number.isFinite(schedule.lr)) {
    throw new ConfigError(`The ${schedule.kind} learning-rate schedule has lr ${schedule.lr}; use a finite number >= 0.`);
  }
  const warmup = schedule.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new ConfigError(`The learning-rate schedule has warmupSteps ${warmup}; use an integer >= 0.`);
  }
  if (schedule.kind === 'step' && (!Number.isInteger(schedule.stepSize) || schedule.stepSize < 1)) {
    throw new ConfigError(`The step learning-rate schedule has stepSize ${schedule.stepSize}; use an integer >= 1.`);
  }
  if (schedule.kind === 'cosine' && (!Number.isInteger(schedule.totalSteps) || schedule.totalSteps <= warmup)) {
    throw new ConfigError(
      `The cosine learning-rate schedule has totalSteps ${schedule.totalSteps}; use an integer greater than warmupSteps (${warmup}).`,
    );
  }
  if (step <= warmup) return (schedule.lr * step) / warmup;
  const t = step - 1 - warmup;
  switch (schedule.kind) {
    case 'constant':
      return schedule.lr;
    case 'step':
      return schedule.lr * (schedule.gamma ?? 0.1) ** Math.floor(t / schedule.stepSize);
    case 'cosine': {
      const total = schedule.totalSteps - warmup;
      const minLr = schedule.minLr ?? 0;
      if (t >= total) return minLr;
      return minLr + ((schedule.lr - minLr) * (1 + Math.cos((Math.PI * t) / total))) / 2;
    }
  }
}
