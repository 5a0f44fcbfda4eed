import * as z from 'zod';

/**
 * Search-space vocabulary shared by passes (which describe what can be tuned) and strategies
 * (which sample it). Distributions follow Optuna's: float / int with optional `step` or `log`
 * scale, and categorical choices.
 */

/** A real number in `[low, high]`, on a grid of `step` from `low`, or sampled on a log scale. */
export interface FloatDistribution {
  readonly kind: 'float';
  readonly low: number;
  readonly high: number;
  readonly step?: number;
  readonly log?: boolean;
}

/** An integer in `[low, high]`, on a grid of `step` (default 1) from `low`, or on a log scale. */
export interface IntDistribution {
  readonly kind: 'int';
  readonly low: number;
  readonly high: number;
  readonly step?: number;
  readonly log?: boolean;
}

/** A value a categorical parameter can take (`null` as Optuna allows `None`, e.g. "no scheme"). */
export type CategoricalChoice = string | number | boolean | null;

/** One of a fixed list of choices (no order assumed). */
export interface CategoricalDistribution {
  readonly kind: 'categorical';
  readonly choices: readonly CategoricalChoice[];
}

export type ParameterDistribution = FloatDistribution | IntDistribution | CategoricalDistribution;

/** The value of one parameter in one trial. */
export type ParameterValue = CategoricalChoice;

/**
 * What a pass tells about the layer (or coupled group of layers) a per-layer parameter controls,
 * as in AMC's layer embedding. Agreed keys: `index` (0-based position in topological order),
 * `opType`, `inChannels`, `outChannels`, `kernel` (product of the kernel dims; 1 for Gemm and
 * MatMul), `stride`, `macs` and `params` (absolute counts of the layers in the input model).
 * Passes may add keys of their own.
 */
export type LayerFeatures = Readonly<Record<string, number | string>>;

/** One tunable parameter of a pass. */
export interface ParameterDescriptor {
  /** Unique within the pass (`ratio.conv1`); the pipeline keeps different passes apart. */
  readonly name: string;
  readonly distribution: ParameterDistribution;
  /**
   * The ONNX node this parameter belongs to, for per-layer parameters. Strategies that walk a
   * model layer by layer (AMC/HAQ-style controllers) group parameters by it.
   */
  readonly layer?: string;
  /** Features of that layer, for strategies that condition on them (search-rl's state). */
  readonly features?: LayerFeatures;
  readonly description?: string;
}

/** Everything one pass can tune for one model. */
export type SearchSpace = readonly ParameterDescriptor[];

/** The values chosen for one trial, by parameter name. */
export type TrialParams = Readonly<Record<string, ParameterValue>>;

// Relative tolerance for "is on the step grid": steps such as 0.05 are not exact in binary.
const gridTolerance = 1e-9;

function isOnGrid(offset: number, step: number): boolean {
  const steps = offset / step;
  return Math.abs(steps - Math.round(steps)) <= gridTolerance * Math.max(1, Math.abs(steps));
}

const finiteNumber = z.number({ error: 'expected a finite number' });

const floatDistributionSchema = z
  .strictObject({
    kind: z.literal('float'),
    low: finiteNumber,
    high: finiteNumber,
    step: z.number().positive({ error: 'expected a positive step' }).optional(),
    log: z.boolean().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.low > d.high) ctx.addIssue({ code: 'custom', path: ['high'], message: `expected high >= low (${d.low})` });
    if (d.log === true && d.step !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: 'expected no step on a log scale (use one or the other)' });
    }
    if (d.log === true && d.low <= 0) ctx.addIssue({ code: 'custom', path: ['low'], message: 'expected low > 0 on a log scale' });
    if (d.step !== undefined && d.low <= d.high && !isOnGrid(d.high - d.low, d.step)) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: `expected a step that divides high - low (${d.high - d.low})` });
    }
  });

const intDistributionSchema = z
  .strictObject({
    kind: z.literal('int'),
    low: z.int({ error: 'expected an integer' }),
    high: z.int({ error: 'expected an integer' }),
    step: z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' }).optional(),
    log: z.boolean().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.low > d.high) ctx.addIssue({ code: 'custom', path: ['high'], message: `expected high >= low (${d.low})` });
    if (d.log === true && d.step !== undefined && d.step !== 1) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: 'expected no step other than 1 on a log scale' });
    }
    if (d.log === true && d.low < 1) ctx.addIssue({ code: 'custom', path: ['low'], message: 'expected low >= 1 on a log scale' });
    if (d.step !== undefined && d.low <= d.high && (d.high - d.low) % d.step !== 0) {
      ctx.addIssue({ code: 'custom', path: ['step'], message: `expected a step that divides high - low (${d.high - d.low})` });
    }
  });

const categoricalDistributionSchema = z
  .strictObject({
    kind: z.literal('categorical'),
    choices: z.array(z.union([z.string(), finiteNumber, z.boolean(), z.null()])).min(1, { error: 'expected at least one choice' }),
  })
  .superRefine((d, ctx) => {
    if (new Set(d.choices).size !== d.choices.length) {
      ctx.addIssue({ code: 'custom', path: ['choices'], message: 'expected distinct choices' });
    }
  });

/** Validates a distribution (Optuna's rules: low <= high, log needs low > 0, step divides the range). */
export const parameterDistributionSchema: z.ZodType<ParameterDistribution> = z.discriminatedUnion('kind', [
  floatDistributionSchema,
  intDistributionSchema,
  categoricalDistributionSchema,
]);

/** Validates a pass's search space: valid distributions, unique parameter names. */
export const searchSpaceSchema: z.ZodType<SearchSpace> = z
  .array(
    z.strictObject({
      name: z.string().min(1, { error: 'expected a non-empty parameter name' }),
      distribution: parameterDistributionSchema,
      layer: z.string().optional(),
      features: z.record(z.string(), z.union([finiteNumber, z.string()])).optional(),
      description: z.string().optional(),
    }),
  )
  .superRefine((space, ctx) => {
    const seen = new Set<string>();
    space.forEach((parameter, index) => {
      if (seen.has(parameter.name)) {
        ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `expected unique names; "${parameter.name}" is repeated` });
      }
      seen.add(parameter.name);
    });
  });

/** True when `value` is one the distribution can produce (in range, on the step grid, a choice). */
export function isValueInDistribution(distribution: ParameterDistribution, value: ParameterValue): boolean {
  switch (distribution.kind) {
    case 'categorical':
      return distribution.choices.includes(value);
    case 'int':
      return (
        typeof value === 'number' &&
        Number.isInteger(value) &&
        value >= distribution.low &&
        value <= distribution.high &&
        (value - distribution.low) % (distribution.step ?? 1) === 0
      );
    case 'float':
      return (
        typeof value === 'number' &&
        Number.isFinite(value) &&
        value >= distribution.low &&
        value <= distribution.high &&
        (distribution.step === undefined || isOnGrid(value - distribution.low, distribution.step))
      );
  }
}
