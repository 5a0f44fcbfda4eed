import * as z from 'zod';
import { targetDevices } from '../contracts/Target.js';
import { closestMatch } from './closestMatch.js';

/**
 * The schema of an `autoglm.yaml` file. Strict at every level (unknown keys are errors) except
 * the plugins' `with:` blocks, which each plugin validates with its own schema.
 */

const positiveInteger = z
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' });
const nonNegativeInteger = z
  .int({ error: 'expected a non-negative integer' })
  .nonnegative({ error: 'expected a non-negative integer' });

function filePath(what: string) {
  return z.string({ error: `expected a path to ${what}` }).min(1, { error: `expected a path to ${what}` });
}

const datasetSourceSchema = z
  .strictObject({
    x: z
      .union([filePath('the inputs (.npy)'), z.record(z.string(), filePath('the inputs (.npy)'))])
      .describe('Inputs, sample axis first: one file, or one file per model input by input name.'),
    y: filePath('the labels (.npy)').optional().describe('Labels (class indices), one per sample.'),
  })
  .describe('A dataset split: inputs x and optional labels y, relative to the config file.');

const pluginSpecifier = z
  .string({ error: 'expected a plugin name or path' })
  .min(1, { error: 'expected a plugin name or path' })
  .describe('A first-party short name (quantizer-int8), a package name, or a path relative to the config file.');

const pluginOptions = z
  .record(z.string(), z.unknown(), { error: 'expected a mapping of plugin options' })
  .default({})
  .describe("The plugin's options, validated by the plugin's own schema.");

const pluginUseSchema = z.strictObject({ use: pluginSpecifier, with: pluginOptions });

/** Metrics core knows the direction of; other metrics need `maximize`. */
export const knownMetricDirections: Readonly<Record<string, 'maximize' | 'minimize'>> = {
  accuracy: 'maximize',
  latency: 'minimize',
  size: 'minimize',
  params: 'minimize',
  macs: 'minimize',
};

const objectiveSchema = z
  .strictObject({
    metric: z
      .string({ error: 'expected a metric name' })
      .min(1, { error: 'expected a metric name' })
      .describe(`A metric: ${Object.keys(knownMetricDirections).join(', ')}, or one an evaluator plugin computes.`),
    maximize: z.boolean().optional().describe('Whether larger is better; known metrics have a default.'),
    maxDrop: z
      .number()
      .nonnegative()
      .optional()
      .describe('For a maximized metric: the largest allowed drop from the baseline, in metric units (0.01 = 1 point).'),
    limit: z.number().optional().describe('An absolute bound: at least this when maximized, at most this when minimized.'),
  })
  .superRefine((objective, context) => {
    const knownDirection = knownMetricDirections[objective.metric];
    if (knownDirection === undefined && objective.maximize === undefined) {
      const suggestion = closestMatch(objective.metric, Object.keys(knownMetricDirections));
      context.addIssue({
        code: 'custom',
        path: ['metric'],
        message:
          suggestion === undefined
            ? `unknown metric "${objective.metric}": set "maximize" for a custom metric (known metrics: ${Object.keys(knownMetricDirections).join(', ')})`
            : `unknown metric "${objective.metric}" (did you mean "${suggestion}"?); set "maximize" for a custom metric`,
      });
    }
    const maximize = objective.maximize ?? knownDirection === 'maximize';
    if (objective.maxDrop !== undefined && !maximize) {
      context.addIssue({
        code: 'custom',
        path: ['maxDrop'],
        message: `maxDrop bounds a maximized metric; "${objective.metric}" is minimized: use limit instead`,
      });
    }
  })
  .transform((objective) => ({
    ...objective,
    maximize: objective.maximize ?? knownMetricDirections[objective.metric] === 'maximize',
  }));

/** The `autoglm.yaml` schema (input: the YAML as written; output: defaults applied). */
export const autoGlmConfigSchema = z
  .strictObject({
    model: filePath('an .onnx model').describe('The ONNX model to compress, relative to the config file.'),
    data: z
      .strictObject({
        train: datasetSourceSchema.optional().describe('Fine-tuning data (distillation).'),
        calib: datasetSourceSchema.optional().describe('Calibration data (quantization).'),
        val: datasetSourceSchema.describe('Validation data: every trial is evaluated on it.'),
      })
      .describe('Dataset splits.'),
    target: z
      .strictObject({
        device: z.enum(targetDevices).default('cpu').describe('ONNX Runtime execution provider.'),
        threads: positiveInteger.default(1).describe('Intra-op threads.'),
        batch: positiveInteger.default(1).describe('Samples per inference call when latency is measured.'),
        optimizationLevel: z
          .enum(['disabled', 'basic', 'extended', 'all'])
          .default('all')
          .describe('ONNX Runtime graph optimization level (INT8 kernels need extended or all).'),
        warmupRuns: nonNegativeInteger.default(5).describe('Untimed runs before latency is measured.'),
        runs: positiveInteger.default(50).describe('Timed runs the latency statistics are over.'),
      })
      .prefault({})
      .describe('The deployment target latency is measured on.'),
    objectives: z
      .array(objectiveSchema)
      .min(1, { error: 'expected at least one objective (for example { metric: accuracy, maxDrop: 0.01 })' })
      .superRefine((objectives, context) => {
        const seen = new Set<string>();
        objectives.forEach((objective, index) => {
          if (seen.has(objective.metric)) {
            context.addIssue({ code: 'custom', path: [index, 'metric'], message: `"${objective.metric}" is listed twice; list each metric once` });
          }
          seen.add(objective.metric);
        });
      })
      .describe('What to optimize and the constraints to meet.'),
    search: pluginUseSchema.describe('The search strategy plugin.'),
    passes: z
      .array(pluginUseSchema)
      .min(1, { error: 'expected at least one pass (for example { use: quantizer-int8 })' })
      .describe('Compression passes, applied in this order in every trial.'),
    output: filePath('an output folder').default('autoglm-out').describe('Where results are written, relative to the config file.'),
  })
  .describe('Open-AutoGLM compression config (autoglm.yaml).');

/** A config as written in YAML (before defaults). */
export type AutoGlmConfigInput = z.input<typeof autoGlmConfigSchema>;
/** A validated config: defaults applied; `loadConfig` also makes its paths absolute. */
export type AutoGlmConfig = z.output<typeof autoGlmConfigSchema>;
/** One `{ use, with }` entry (`search:` and each of `passes:`). */
export type PluginUse = AutoGlmConfig['search'];
/** One entry of `objectives:`. */
export type Objective = AutoGlmConfig['objectives'][number];
/** The `target:` section. */
export type TargetConfig = AutoGlmConfig['target'];
