import * as z from 'zod';

/**
 * A tunable number: fixed (`4`), one of a list of choices (`[2, 4, 8]`), or a range the search
 * samples (`{ min: 1, max: 8 }`, optionally on a `step` grid or a `log` scale).
 */
function tunable(kind: 'float' | 'int', bounds: { min?: number; max?: number; positive?: boolean }) {
  let value = kind === 'int' ? z.int() : z.number();
  if (bounds.positive === true) value = value.positive();
  if (bounds.min !== undefined) value = value.min(bounds.min);
  if (bounds.max !== undefined) value = value.max(bounds.max);
  const range = z
    .strictObject({ min: value, max: value, step: z.number().positive().optional(), log: z.boolean().optional() })
    .refine((r) => r.min <= r.max, { message: 'expected min <= max', path: ['max'] })
    .refine((r) => !(r.log === true && r.step !== undefined), { message: 'expected either step or log, not both', path: ['log'] })
    .refine((r) => !(r.log === true && r.min <= 0), { message: 'expected min > 0 on a log scale', path: ['min'] });
  return z.union([value, z.array(value).min(1), range]);
}

export type TunableNumber = number | readonly number[] | { readonly min: number; readonly max: number; readonly step?: number; readonly log?: boolean };

const featurePairSchema = z.strictObject({ student: z.string().min(1), teacher: z.string().min(1).optional() });

/** The plugin's `with:` options (strict: a misspelt key is an error). */
export const distillerOptionsSchema = z.strictObject({
  /** Softmax temperature of the distillation term. */
  temperature: tunable('float', { positive: true }).default({ min: 1, max: 8 }),
  /** Weight of the distillation term against cross-entropy on labels (1 without labels). */
  alpha: tunable('float', { min: 0, max: 1 }).default({ min: 0.5, max: 1 }),
  /** Peak learning rate (AdamW, cosine decay). */
  learningRate: tunable('float', { positive: true }).default({ min: 1e-4, max: 1e-2, log: true }),
  /** A budget of updates; default: whole epochs. */
  steps: tunable('int', { min: 1 }).optional(),
  /** Passes over the training data: default 1, or as many as `steps` needs when it is set (then an upper bound). */
  epochs: z.int().min(1).optional(),
  batchSize: z.int().min(1).default(64),
  /** Intermediate tensors distilled by MSE: none, auto (the last feature map both models share by name), stages (the last of every resolution), pruned (every ReLU output on the channels a pruned student kept), pruned-preactivation (the inputs of those ReLUs through the teacher's margin ReLU), or pairs. */
  features: z.union([z.enum(['none', 'auto', 'stages', 'pruned', 'pruned-preactivation']), z.array(featurePairSchema).min(1)]).default('none'),
  featureWeight: z.number().min(0).default(1),
  /** Early stopping after this many epochs without a better validation accuracy (needs a val split). */
  patience: z.int().min(1).optional(),
  schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
  /**
   * Random shifts (up to `translate` pixels, `padding` zero or edge) and left-right flips of every
   * training batch of images, the same batch for teacher and student.
   */
  augmentation: z
    .strictObject({ translate: z.int().min(0).optional(), padding: z.enum(['zero', 'edge']).optional(), flip: z.boolean().optional() })
    .optional(),
  /** Keep teacher outputs across epochs in memory, in files under the trial's work folder (disk), or not at all; default memory, none with augmentation. */
  teacherCache: z.enum(['memory', 'disk', 'none']).optional(),
}).refine((options) => !(augments(options.augmentation) && options.teacherCache !== undefined && options.teacherCache !== 'none'), {
  message: "the teacher's outputs cannot be cached with augmentation (every epoch feeds new inputs): use teacherCache none, or leave it unset",
  path: ['teacherCache'],
});

function augments(augmentation: { translate?: number | undefined; flip?: boolean | undefined } | undefined): boolean {
  return augmentation !== undefined && ((augmentation.translate ?? 0) > 0 || augmentation.flip === true);
}

export type DistillerOptions = z.output<typeof distillerOptionsSchema>;
