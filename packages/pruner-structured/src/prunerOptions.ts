import { parameterDistributionSchema } from '@open-autoglm/core';
import * as z from 'zod';
import { IMPORTANCE_CRITERIA } from './computeImportance.js';

/**
 * The grid of searched ratios when the config gives none. A range without `step` keeps it (a
 * coarse grid is what lets a search revisit and compare plans); it must divide `max - min`.
 */
export const DEFAULT_RATIO_STEP = 0.05;

const ratioRangeSchema = z
  .strictObject({
    min: z.number().min(0).lt(1).default(0),
    max: z.number().min(0).lt(1, { error: 'expected max < 1: a ratio of 1 would remove every channel' }).default(0.7),
    step: z.number().positive().default(DEFAULT_RATIO_STEP),
  })
  .superRefine((r, ctx) => {
    if (r.min > r.max) {
      ctx.addIssue({ code: 'custom', path: ['max'], message: 'expected min <= max' });
      return;
    }
    // The search space's own rules (core's): the step must divide the range.
    const checked = parameterDistributionSchema.safeParse({ kind: 'float', low: r.min, high: r.max, step: r.step });
    if (!checked.success) {
      for (const issue of checked.error.issues) {
        ctx.addIssue({ code: 'custom', path: ['step'], message: `${issue.message}; step is ${r.step}${r.step === DEFAULT_RATIO_STEP ? ' (the default)' : ''}: give a step that divides max - min` });
      }
    }
  });

/** The plugin's `with:` options (every key optional: `{}` is valid). */
export const prunerOptionsSchema = z.strictObject({
  /** How units are ranked. */
  criterion: z.enum(IMPORTANCE_CRITERIA as ['l1', 'l2', 'fpgm', 'bn', 'taylor', 'random']).default('l1'),
  /** Range of the searched ratios (fraction of units removed), on a grid of `step` (default 0.05). */
  ratio: ratioRangeSchema.default({ min: 0, max: 0.7, step: DEFAULT_RATIO_STEP }),
  /** One ratio per prunable group (true, what layer-wise strategies need) or one global ratio. */
  perLayer: z.boolean().default(true),
  /**
   * Kept channels per group rounded to a multiple of this. 8 by default: onnxruntime's CPU
   * convolutions run blocks of 8/16 channels, and free widths lose most of the speed-up.
   */
  roundTo: z.int().min(1).default(8),
  /**
   * Units every group keeps at least: a channel floor. Groups at or below it are left out of the
   * search space. Widths under a kernel's fast size can be slower than the fast size itself (see
   * `npm run bench:channels`: onnxruntime's INT8 convolutions with 8 channels run slower than with
   * 16), so a floor there spares the search plans that lose accuracy and gain nothing.
   */
  minUnits: z.int().min(1).default(1),
  /** Groups (by name or any of their layers) never pruned. */
  protect: z.array(z.string().min(1)).default([]),
  /** Re-estimate BatchNorm statistics on the calibration split after pruning (when the config has one). */
  recalibrate: z.boolean().default(true),
  /**
   * Fold the mean contribution of removed inputs into the biases of the layers reading them
   * (for BN-folded models; needs the calibration split). Off by default: on the fixtures it
   * helped some plans and hurt others (see the README).
   */
  biasCorrection: z.boolean().default(false),
  /**
   * Refit the layers that read removed channels by least squares on the calibration split, so
   * their outputs match the original model's (see `reconstructConsumers`), instead of re-estimating
   * BatchNorm statistics: when on, `recalibrate` is not applied (re-estimation after the refit
   * lowered accuracy, ResNet-8 at 50%: 83.9% -> 78.25%; see the README). Needs `data.calib`.
   */
  reconstruct: z.boolean().default(false),
  /** Calibration samples used for BatchNorm re-estimation, bias correction and Taylor gradients. */
  calibrationSamples: z.int().min(2).default(512),
});

export type PrunerOptions = z.output<typeof prunerOptionsSchema>;
