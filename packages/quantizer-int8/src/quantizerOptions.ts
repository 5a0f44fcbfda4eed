import * as z from 'zod';
import { CALIBRATION_METHODS } from './calibration/calibrateRanges.js';

/** The plugin's `with:` options (strict: a misspelt key is an error). */
export const quantizerOptionsSchema = z.strictObject({
  /** static: calibrated QDQ (CNNs); dynamic: run-time activation quantization (transformers). */
  mode: z.enum(['static', 'dynamic']).default('static'),
  /** Calibration method, or several for the search to choose from. */
  calibration: z
    .union([z.enum(CALIBRATION_METHODS), z.array(z.enum(CALIBRATION_METHODS)).min(1)])
    .default('minmax'),
  /** Per-channel weight scales (default) or one per weight. */
  perChannel: z.boolean().default(true),
  /** Activation integer type: uint8 (default; ORT's fast U8S8 kernels on x86) or int8. */
  activationType: z.enum(['uint8', 'int8']).default('uint8'),
  /** Offer an int8/float choice per layer to the search. */
  perLayer: z.boolean().default(false),
  /** Op types or node names that always stay float. */
  exclude: z.array(z.string().min(1)).default([]),
  /** Calibrate on at most this many samples of the calib split. */
  calibrationSamples: z.int().positive().optional(),
  /** Percentile calibration: share of |x| kept, in percent. */
  percentile: z.number().gt(0).max(100).default(99.999),
  /** MinMax calibration: moving-average constant of the per-batch extremes. */
  movingAverage: z.number().gt(0).max(1).optional(),
});

export type QuantizerOptions = z.output<typeof quantizerOptionsSchema>;
