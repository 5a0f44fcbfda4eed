import { ConfigError, ModelFormatError } from '@open-autoglm/core';
import {
  buildTrainingStep,
  type Dim,
  type LearningRateSchedule,
  learningRateAt,
  type LossTerm,
  type OnnxModel,
  type OptimizerSpec,
  refreezeQuantizedWeights,
  tensorTypeOf,
  unfreezeQuantizedWeights,
} from '@open-autoglm/onnx';
import {
  type Dataset,
  type EpochSummary,
  type ImageAugmentation,
  type RuntimeTarget,
  type TeacherCache,
  Trainer,
  type TrainingEvent,
  type WeightAveraging,
} from '@open-autoglm/runtime';
import { type FeatureMatching, type MatchedFeature, removeProjections, setUpFeaturePairs } from './featurePairs.js';

export interface DistillOptions {
  /** The model to learn from (typically the uncompressed original); it only runs inference. */
  readonly teacher: OnnxModel;
  /** The model being trained (pruned, and/or carrying Q->DQ fake-quant nodes for QAT). */
  readonly student: OnnxModel;
  /** Training inputs; labels are optional (without them the loss is pure distillation, alpha 1). */
  readonly train: Dataset;
  /** Labelled data: top-1 accuracy after every epoch picks the best model and drives early stopping. */
  readonly validation?: Dataset;
  /** Softmax temperature T of the distillation term; default 4. */
  readonly temperature?: number;
  /** Weight of the distillation term against cross-entropy on labels; default 0.9 with labels, and always 1 without. */
  readonly alpha?: number;
  /** Intermediate tensors distilled by mean-squared error; default `none`. */
  readonly features?: FeatureMatching;
  /** Weight of the feature term; default 1. */
  readonly featureWeight?: number;
  /** Passes over the training data; default 1. */
  readonly epochs?: number;
  /** A budget of updates instead of (or below) whole epochs; training stops after this many. */
  readonly steps?: number;
  /** Default 64. */
  readonly batchSize?: number;
  /** Peak learning rate; default 1e-3. */
  readonly learningRate?: number;
  /** `cosine` (default) or `linear` decay to 0 over the run after `warmupSteps`; `constant` keeps it. */
  readonly schedule?: 'cosine' | 'linear' | 'constant';
  /** Linear warm-up updates; default 0. */
  readonly warmupSteps?: number;
  /** Default AdamW without weight decay (the student is already trained; decay would only pull it away). */
  readonly optimizer?: OptimizerSpec;
  /** Early stopping: end after this many epochs without a better validation accuracy (needs `validation`). */
  readonly patience?: number;
  /** Seeds the shuffling and the projections' initial weights; default 0. */
  readonly seed?: number;
  /** Where the student's step and the teacher run; default one CPU thread. */
  readonly target?: RuntimeTarget;
  /**
   * Random shifts and left-right flips of every training batch (float32 images [N, C, H, W]),
   * drawn per sample from the seed and the update; teacher and student see the same augmented
   * batch, so the teacher's soft labels cover every shifted and mirrored sample.
   */
  readonly augmentation?: ImageAugmentation;
  /**
   * Where teacher outputs are kept across epochs; default `memory`, and `none` with
   * `augmentation` (every epoch feeds new inputs; caching is then refused).
   */
  readonly teacherCache?: TeacherCache;
  /**
   * Evaluate and export an exponential moving average of the student's weights (and BatchNorm
   * statistics) instead of the last ones (`TrainerOptions.weightAveraging`); default off.
   */
  readonly weightAveraging?: WeightAveraging;
  readonly onEvent?: (event: TrainingEvent) => void;
  /** Aborting stops at the next update; the result then holds the best model so far. */
  readonly signal?: AbortSignal;
}

/** Why training ended. */
export type DistillationStop = 'completed' | 'step-budget' | 'early-stopping' | 'aborted';

export interface DistillResult {
  /**
   * The distilled student: with validation data, the one with the best validation accuracy
   * after an epoch (or at the end of a step budget); without, the final one. Projections are
   * removed; the student's QDQ structure is kept: fake-quant nodes stay, and integer weights of
   * a real QDQ student are written back as integers with their original scales.
   */
  readonly model: OnnxModel;
  readonly history: readonly EpochSummary[];
  /** Validation accuracy of `model` (null without validation data). */
  readonly validationAccuracy: number | null;
  /** The epoch `model` comes from (0-based; null when it is the final model). */
  readonly bestEpoch: number | null;
  readonly steps: number;
  readonly stop: DistillationStop;
  readonly alpha: number;
  readonly temperature: number;
  readonly features: readonly MatchedFeature[];
  /** Integer (real QDQ) weights of the student that were trained behind fake quantization and re-quantized with their scales. */
  readonly requantizedWeights: number;
  readonly samplesPerSecond: number;
}

export const DEFAULT_TEMPERATURE = 4;
export const DEFAULT_ALPHA = 0.9;
const DEFAULT_BATCH = 64;
const DEFAULT_LEARNING_RATE = 1e-3;

/**
 * Trains `student` to imitate `teacher` (Hinton et al.): loss = alpha * T^2 * KL(softmax(t/T) ||
 * softmax(s/T)) + (1 - alpha) * cross-entropy(labels), plus `featureWeight` * MSE of matched
 * intermediate tensors, on the ONNX Runtime training engine. The teacher runs in its own
 * inference session once per batch. Throws ModelFormatError when the teacher's and the student's
 * inputs or outputs differ in shape, DatasetError when the data does not fit the models, before
 * any training.
 */
export async function distill(options: DistillOptions): Promise<DistillResult> {
  const { teacher, train } = options;
  checkCompatible(teacher, options.student);
  const labelled = train.labels !== undefined;
  const alpha = options.alpha ?? (labelled ? DEFAULT_ALPHA : 1);
  if (!labelled && alpha < 1) {
    throw new ConfigError(
      `alpha is ${alpha}, which weights cross-entropy on labels by ${1 - alpha}, but the training data has no labels. ` +
        'Give labels, or use alpha 1 (pure distillation).',
    );
  }
  const temperature = options.temperature ?? DEFAULT_TEMPERATURE;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (options.patience !== undefined && options.validation === undefined) {
    throw new ConfigError('Early stopping (patience) watches the validation accuracy, but no validation data was given. Give validation data, or drop patience.');
  }
  // A real QDQ student (integer weights) trains as fake quantization and is exported back as real QDQ.
  const unfrozen = options.student.clone();
  const quantizedWeights = unfreezeQuantizedWeights(unfrozen);
  const { student, teacher: teacherToRun, pairs } = setUpFeaturePairs(unfrozen, teacher, options.features ?? 'none', options.seed ?? 0);
  const loss: LossTerm[] = [{ kind: 'distillation', temperature, alpha }];
  if (pairs.length > 0) loss.push({ kind: 'mse', pairs: pairs.map((p) => ({ student: p.distilled })), weight: options.featureWeight ?? 1 });
  // The margins of pruned-preactivation pairs are constants of the loss, not weights to learn
  // (a one-channel margin is a scalar, which the default rule does not train anyway).
  const margins = pairs.flatMap((p) => (p.margin === undefined || p.margin.channels < 2 ? [] : [p.margin.values]));
  const step = buildTrainingStep(student, {
    loss,
    ...(margins.length === 0 ? {} : { frozen: margins }),
    optimizer: options.optimizer ?? { kind: 'adamw', weightDecay: 0 },
  }).model;

  const stepsPerEpoch = Math.ceil(train.size / batchSize);
  const budget = options.steps;
  if (budget !== undefined && (!Number.isSafeInteger(budget) || budget < 1)) throw new ConfigError(`steps must be a whole number >= 1, got ${budget}.`);
  const epochs = budget === undefined ? (options.epochs ?? 1) : Math.min(options.epochs ?? Number.POSITIVE_INFINITY, Math.ceil(budget / Math.max(1, stepsPerEpoch)));
  const totalSteps = Math.min(budget ?? Number.POSITIVE_INFINITY, epochs * stepsPerEpoch);
  const schedule = learningRateSchedule(options, totalSteps);
  learningRateAt(1, schedule); // a bad schedule fails before the sessions open

  const trainer = await Trainer.create({
    model: student,
    step,
    train,
    ...(options.validation === undefined ? {} : { validation: options.validation }),
    epochs,
    batchSize,
    seed: options.seed ?? 0,
    learningRate: (update) => learningRateAt(update, schedule) * linearDecayFactor(options, update, totalSteps),
    ...(options.target === undefined ? {} : { target: options.target }),
    teacher: {
      model: teacherToRun,
      features: Object.fromEntries(pairs.map((p) => [p.distilled, p.teacher])),
      ...(options.teacherCache === undefined ? {} : { cache: options.teacherCache }),
    },
    ...(options.augmentation === undefined ? {} : { augmentation: options.augmentation }),
    ...(options.weightAveraging === undefined ? {} : { weightAveraging: options.weightAveraging }),
  });
  try {
    let best: { model: OnnxModel; accuracy: number; epoch: number | null } | undefined;
    let sinceBest = 0;
    let earlyStop = false;
    const result = await trainer.train(
      {
        ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
        shouldStop: () => earlyStop || options.signal?.aborted === true,
        afterEpoch: (summary) => {
          const accuracy = summary.validationAccuracy;
          if (accuracy === null) return;
          if (best === undefined || accuracy > best.accuracy) {
            best = { model: trainer.exportModel(), accuracy, epoch: summary.epoch };
            sinceBest = 0;
          } else if (options.patience !== undefined && ++sinceBest >= options.patience) {
            earlyStop = true;
          }
        },
      },
      totalSteps,
    );
    const aborted = options.signal?.aborted === true;
    const stop: DistillationStop = aborted ? 'aborted' : earlyStop ? 'early-stopping' : result.completed ? 'completed' : 'step-budget';
    // A budget that ends mid-epoch: the final model gets its own evaluation.
    if (options.validation !== undefined && result.position.batchInEpoch > 0) {
      const accuracy = await trainer.evaluate(options.validation);
      if (best === undefined || accuracy > best.accuracy) best = { model: trainer.exportModel(), accuracy, epoch: null };
    }
    const chosen = best ?? { model: trainer.exportModel(), accuracy: null, epoch: null };
    removeProjections(chosen.model, pairs);
    refreezeQuantizedWeights(chosen.model, quantizedWeights);
    return {
      model: chosen.model,
      history: result.history,
      validationAccuracy: chosen.accuracy,
      bestEpoch: chosen.epoch,
      steps: result.position.step,
      stop,
      alpha,
      temperature,
      features: pairs,
      requantizedWeights: quantizedWeights.weights.length,
      samplesPerSecond: result.samplesPerSecond,
    };
  } finally {
    await trainer.release();
  }
}

function learningRateSchedule(options: DistillOptions, totalSteps: number): LearningRateSchedule {
  const lr = options.learningRate ?? DEFAULT_LEARNING_RATE;
  const warmupSteps = options.warmupSteps ?? 0;
  // linear: the constant schedule (with its warm-up), scaled down by linearDecayFactor.
  if ((options.schedule ?? 'cosine') !== 'cosine' || totalSteps <= warmupSteps) return { kind: 'constant', lr, warmupSteps };
  return { kind: 'cosine', lr, totalSteps, warmupSteps };
}

/** `linear` schedule: the constant schedule (with its warm-up) times 1 - t / (updates after the warm-up); 1 otherwise. */
function linearDecayFactor(options: DistillOptions, update: number, totalSteps: number): number {
  const warmupSteps = options.warmupSteps ?? 0;
  if (options.schedule !== 'linear' || update <= warmupSteps || totalSteps <= warmupSteps) return 1;
  return 1 - (update - 1 - warmupSteps) / (totalSteps - warmupSteps);
}

/** The teacher and the student must take the same inputs and give outputs of the same shape. */
function checkCompatible(teacher: OnnxModel, student: OnnxModel): void {
  const describe = (model: OnnxModel, which: 'inputs' | 'outputs'): { name: string; dims: readonly Dim[] | undefined }[] => {
    const initializers = new Set(model.graph.initializers.map((t) => t.name));
    const list = which === 'inputs' ? model.graph.inputs.filter((i) => !initializers.has(i.name)) : model.graph.outputs;
    return list.map((info) => ({ name: info.name, dims: tensorTypeOf(info)?.dims }));
  };
  const label = (model: OnnxModel, role: string): string => `${role}${model.source === undefined ? '' : ` ${model.source}`}`;
  const show = (dims: readonly Dim[] | undefined): string => (dims === undefined ? '[?]' : `[${dims.map((d) => d ?? '?').join(', ')}]`);
  for (const which of ['outputs', 'inputs'] as const) {
    const t = describe(teacher, which)[0];
    const s = describe(student, which)[0];
    if (t === undefined || s === undefined) {
      throw new ModelFormatError(`The ${t === undefined ? label(teacher, 'teacher') : label(student, 'student')} has no ${which}.`);
    }
    const comparable = t.dims !== undefined && s.dims !== undefined;
    const differs =
      comparable &&
      (t.dims!.length !== s.dims!.length || t.dims!.some((d, axis) => axis > 0 && typeof d === 'number' && typeof s.dims![axis] === 'number' && d !== s.dims![axis]));
    if (differs) {
      throw new ModelFormatError(
        `The ${label(teacher, 'teacher')} and the ${label(student, 'student')} do not fit together: the teacher's first ${which.slice(0, -1)} ` +
          `"${t.name}" is ${show(t.dims)} but the student's "${s.name}" is ${show(s.dims)}. ` +
          (which === 'outputs'
            ? 'Distillation needs a student that predicts the same classes as its teacher.'
            : 'A teacher must take the same inputs as its student.'),
        { file: student.source },
      );
    }
  }
}
