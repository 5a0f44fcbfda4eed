import { isDeepStrictEqual } from 'node:util';
import { ConfigError, DatasetError, ModelFormatError, SeededRandom, type SeededRandomState } from '@open-autoglm/core';
import {
  describeTrainingStep,
  initialTrainingState,
  type OnnxModel,
  type TensorArray,
  type TrainingStepSignature,
  writeTrainedParameters,
} from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import { DEFAULT_FEATURE, type Dataset } from '../dataset.js';
import { evaluateAccuracy } from '../evaluateAccuracy.js';
import type { NpyArray } from '../npy.js';
import { createSession, type RuntimeSession, type TensorMap } from '../session.js';
import type { RuntimeTarget } from '../target.js';
import { applyImageTransforms, augmentationRandom, checkImageAugmentation, drawImageTransforms, type ImageAugmentation, isIdentityAugmentation } from './ImageAugmentation.js';
import { type TeacherOptions, TeacherOutputs } from './TeacherOutputs.js';
import type {
  CheckpointTensor,
  CheckpointTensorType,
  EpochSummary,
  EpochTotals,
  TrainingCheckpoint,
  TrainingPosition,
} from './TrainingCheckpoint.js';

/** The learning rate of update number `update` (1-based) out of `totalUpdates`. */
export type LearningRateFunction = (update: number, totalUpdates: number) => number;

export interface TrainerOptions {
  /** The inference model being trained; `exportModel` writes the trained values into a copy of it. */
  readonly model: OnnxModel;
  /** Its training step, from `buildTrainingStep(model, spec)`. */
  readonly step: OnnxModel;
  readonly train: Dataset;
  /** Evaluated (top-1 accuracy) after every epoch when given. */
  readonly validation?: Dataset;
  readonly epochs: number;
  readonly batchSize: number;
  /** Skip the last, smaller batch of each epoch (PyTorch's `drop_last`); default false. */
  readonly dropLast?: boolean;
  /** Seeds the shuffling of the training samples; default 0. */
  readonly seed?: number;
  /** A fixed rate, or one per update (e.g. from `learningRateAt`). */
  readonly learningRate: number | LearningRateFunction;
  /** Where the step runs; default one CPU thread. */
  readonly target?: RuntimeTarget;
  /** Samples per inference run when evaluating; default 250. */
  readonly evaluationBatch?: number;
  /** Step batch input name -> dataset array name, when a model has several inputs named unlike the arrays. */
  readonly inputMap?: Readonly<Record<string, string>>;
  /**
   * Anything else that determines the run's trajectory (step spec, schedule, source model
   * digest...), as JSON. Stored in checkpoints and compared on resume, with the Trainer's own
   * settings (batch size, seed, epochs, drop-last, sample count).
   */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** Continue from this checkpoint of the same run (same settings) instead of the step's initial values. */
  readonly resume?: TrainingCheckpoint;
  /**
   * The teacher whose outputs feed the step's teacher inputs (its distillation and mse loss
   * terms); required exactly when the step has such inputs.
   */
  readonly teacher?: TeacherOptions;
  /**
   * Random shifts and flips of every training batch, drawn per sample from the seed and the
   * update number (so a resumed run redraws them) and applied to every batch input, which must
   * then be float32 images [N, C, H, W]. The teacher sees the same augmented batch as the
   * student, so its outputs cannot be cached: its cache defaults to `none`, and `memory` or a
   * directory is refused.
   */
  readonly augmentation?: ImageAugmentation;
  /**
   * Polyak averaging: an exponential moving average of the parameters and buffers (BatchNorm
   * running statistics included, as in timm's ModelEmaV2), taken after every update and
   * bias-corrected like Adam's moments: `a_t = decay * a_(t-1) + (1 - decay) * w_t` from
   * `a_0 = 0`, used as `a_t / (1 - decay^t)`, so the starting weights carry no weight however
   * short the run. Evaluation and `exportModel` then use the averaged values (the starting ones
   * before the first update); checkpoints store the averages, so a resumed run averages on exactly.
   */
  readonly weightAveraging?: WeightAveraging;
}

/** See `TrainerOptions.weightAveraging`. */
export interface WeightAveraging {
  /** Per-update decay in [0, 1): the averaged weights follow the trained ones over about 1 / (1 - decay) updates. */
  readonly decay: number;
}

/** Checkpoint tensors of the averaged weights are stored under this prefix and the step input's name. */
export const AVERAGED_TENSOR_PREFIX = 'averaged:';

/** Progress, reported after every update and after every epoch. */
export type TrainingEvent =
  | {
      readonly kind: 'step';
      /** 0-based epoch. */
      readonly epoch: number;
      readonly epochs: number;
      /** Batches of this epoch done, including this one. */
      readonly batchInEpoch: number;
      readonly batchesPerEpoch: number;
      /** Updates done in total, including this one. */
      readonly step: number;
      readonly totalSteps: number;
      readonly loss: number;
      readonly learningRate: number;
      /** Training throughput of this session so far (evaluation time excluded). */
      readonly samplesPerSecond: number;
      /** Estimated seconds until the last update, at the throughput so far. */
      readonly etaSeconds: number;
    }
  | { readonly kind: 'epoch'; readonly summary: EpochSummary; readonly epochs: number };

export interface TrainHooks {
  readonly onEvent?: (event: TrainingEvent) => void;
  /** Asked after every update; true stops training at that step boundary (then `checkpoint()` resumes from there). */
  readonly shouldStop?: () => boolean;
  /** Awaited after every epoch (after its evaluation), e.g. to write a checkpoint. */
  readonly afterEpoch?: (summary: EpochSummary) => Promise<void> | void;
}

export interface TrainingResult {
  /** False when training stopped early (hook or `maxSteps`); `checkpoint()` then continues it. */
  readonly completed: boolean;
  readonly position: TrainingPosition;
  /** Loss of the last update run so far (in this or an earlier, resumed session); null before any update. */
  readonly finalLoss: number | null;
  readonly history: readonly EpochSummary[];
  /** Training throughput of this session (evaluation excluded); 0 when no update ran. */
  readonly samplesPerSecond: number;
  /** Updates run by this call. */
  readonly steps: number;
}

const DEFAULT_EVALUATION_BATCH = 250;
const NO_TOTALS: EpochTotals = { lossSum: 0, correct: 0, samples: 0, seconds: 0 };

/**
 * Runs a training-step model (see `buildTrainingStep`) over a dataset: epochs of shuffled
 * batches, the parameters, optimizer state and buffers fed back from one update to the next as
 * the onnxruntime tensors the step returned (never copied), the learning rate per update,
 * evaluation after each epoch on an exported inference model, and checkpoints that continue a
 * run exactly.
 *
 * Shuffling: one `SeededRandom` stream for the run; at the start of every epoch its state is
 * remembered and a permutation of the samples is drawn from it. A checkpoint stores that
 * epoch-start state and the number of batches done, so a resumed run redraws the same
 * permutation and continues with the next batch: the same updates in the same order.
 */
export class Trainer {
  private readonly signature: TrainingStepSignature;
  private readonly settings: Readonly<Record<string, unknown>>;
  private readonly random: SeededRandom;
  private readonly batchesPerEpoch: number;
  private readonly bindings: readonly { readonly input: string; readonly array: NpyArray; readonly rowSize: number }[];
  /** Current values of every parameter, optimizer state and buffer, by step input name. */
  private readonly values = new Map<string, Tensor>();
  /** The moving average of every parameter and buffer, by step input name; empty without weight averaging. */
  private readonly averaged = new Map<string, Float32Array>();
  private teacher: TeacherOutputs | undefined;
  /** Normalized (every field set); undefined when the run does not augment. */
  private readonly augmentation: Required<ImageAugmentation> | undefined;
  private epochRandomState: SeededRandomState;
  private position: TrainingPosition;
  private history: EpochSummary[];
  private lastLoss: number | null;
  private epochTotals: EpochTotals;
  private released = false;

  private constructor(
    private readonly options: TrainerOptions,
    private readonly session: RuntimeSession,
  ) {
    this.signature = describeTrainingStep(options.step);
    const { train, batchSize, epochs } = options;
    checkWholeNumber('epochs', epochs, 1);
    checkWholeNumber('batch size', batchSize, 1);
    train.requireSamples('train');
    this.batchesPerEpoch = options.dropLast === true ? Math.floor(train.size / batchSize) : Math.ceil(train.size / batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new ConfigError(
        `The training data has ${train.size} samples, fewer than one batch of ${batchSize}, and the last partial batch is dropped. ` +
          'Use a smaller batch size, or keep the partial batch.',
      );
    }
    this.bindings = bindBatchInputs(this.signature, train, options.inputMap);
    if (this.signature.labels !== undefined) checkLabels(train);
    const takesTeacher = this.signature.teacherLogits !== undefined || this.signature.teacherFeatures.length > 0;
    if (takesTeacher && options.teacher === undefined) {
      throw new ConfigError(
        'This training step takes teacher outputs (a distillation or mse loss term), but no teacher was given. ' +
          'Give the teacher model (TrainerOptions.teacher), or build the step without those terms.',
      );
    }
    if (!takesTeacher && options.teacher !== undefined) {
      throw new ConfigError('A teacher was given, but the training step takes no teacher outputs. Build the step with a distillation or mse loss term.');
    }
    this.augmentation = checkAugmentation(options.augmentation, this.bindings, options.teacher);
    if (options.weightAveraging !== undefined) checkWeightAveraging(options.weightAveraging);
    this.settings = {
      ...options.settings,
      epochs,
      batchSize,
      dropLast: options.dropLast === true,
      seed: options.seed ?? 0,
      trainSamples: train.size,
      // Only when augmenting, so checkpoints of runs without augmentation keep their settings.
      ...(this.augmentation === undefined ? {} : { augmentation: this.augmentation }),
      ...(options.weightAveraging === undefined ? {} : { weightAveraging: { decay: options.weightAveraging.decay } }),
    };
    const resume = options.resume;
    if (resume === undefined) {
      this.random = new SeededRandom(options.seed ?? 0);
      this.epochRandomState = this.random.state;
      this.position = { step: 0, epoch: 0, batchInEpoch: 0 };
      this.history = [];
      this.lastLoss = null;
      this.epochTotals = NO_TOTALS;
      for (const [name, value] of initialTrainingState(options.model, this.signature)) {
        this.values.set(name, new Tensor('float32', value.data, value.dims));
      }
      if (options.weightAveraging !== undefined) {
        for (const name of this.averagedNames()) this.averaged.set(name, new Float32Array((this.values.get(name) as Tensor).data.length));
      }
    } else {
      this.checkResumable(resume);
      this.random = SeededRandom.fromState(resume.epochRandomState);
      this.epochRandomState = resume.epochRandomState;
      this.position = resume.position;
      this.history = [...resume.history];
      this.lastLoss = resume.lastLoss;
      this.epochTotals = resume.epochTotals;
      for (const [name, tensor] of resume.tensors) {
        if (name.startsWith(AVERAGED_TENSOR_PREFIX)) this.averaged.set(name.slice(AVERAGED_TENSOR_PREFIX.length), Float32Array.from(tensor.data as Float32Array));
        else this.values.set(name, new Tensor(tensor.type, tensor.data, tensor.dims));
      }
    }
  }

  /** Opens a session for the step and checks the data against it (ConfigError/DatasetError on mismatch). */
  static async create(options: TrainerOptions): Promise<Trainer> {
    const session = await createSession(options.step.toBytes(), options.target ?? { device: 'cpu', threads: 1 }, {
      file: options.step.source ?? 'training step',
    });
    let trainer: Trainer;
    try {
      trainer = new Trainer(options, session);
    } catch (error) {
      await session.release();
      throw error;
    }
    if (options.teacher !== undefined) {
      try {
        // Augmented batches differ every epoch: the teacher then runs on each of them.
        const teacher = trainer.augmentation === undefined ? options.teacher : { ...options.teacher, cache: 'none' as const };
        trainer.teacher = await TeacherOutputs.create(teacher, trainer.signature, options.train.size, options.target ?? { device: 'cpu', threads: 1 });
      } catch (error) {
        await trainer.release();
        throw error;
      }
    }
    return trainer;
  }

  /** Updates per epoch. */
  get stepsPerEpoch(): number {
    return this.batchesPerEpoch;
  }

  /** Where training stands. */
  get currentPosition(): TrainingPosition {
    return this.position;
  }

  /**
   * Trains until the last epoch ends, `hooks.shouldStop()` says so, or `maxSteps` updates (in
   * total, counting those before a resume) are done. Can be called again to continue.
   */
  async train(hooks: TrainHooks = {}, maxSteps = Number.POSITIVE_INFINITY): Promise<TrainingResult> {
    this.requireOpen();
    const { batchSize, epochs } = this.options;
    const totalSteps = epochs * this.batchesPerEpoch;
    const stepLimit = Math.min(totalSteps, maxSteps);
    const learningRate = this.options.learningRate;
    const rateOf = typeof learningRate === 'number' ? () => learningRate : learningRate;
    let samplesThisCall = 0;
    let trainingSeconds = 0;
    let stepsThisCall = 0;
    const batchBuffers = this.bindings.map((b) => allocateLike(b.array.data, batchSize * b.rowSize));
    const augmentedBuffers = this.augmentation === undefined ? [] : this.bindings.map((b) => new Float32Array(batchSize * b.rowSize));
    const labelBuffer = new BigInt64Array(batchSize);

    while (this.position.epoch < epochs && this.position.step < stepLimit) {
      const epoch = this.position.epoch;
      // Redraw this epoch's order from its start state (the same after a resume).
      const random = SeededRandom.fromState(this.epochRandomState);
      const order = random.permutation(this.options.train.size);
      let { lossSum: epochLoss, correct: epochCorrect, samples: epochSamples, seconds: epochSeconds } = this.epochTotals;
      let stopped = false;
      for (let batch = this.position.batchInEpoch; batch < this.batchesPerEpoch; batch++) {
        const start = batch * batchSize;
        const size = Math.min(batchSize, order.length - start);
        const indices = order.subarray(start, start + size);
        const feeds: TensorMap = {};
        const update = this.position.step + 1;
        const augmentation = this.augmentation;
        const transforms = augmentation === undefined ? undefined : drawImageTransforms(augmentation, size, augmentationRandom(this.options.seed ?? 0, update));
        this.bindings.forEach((binding, i) => {
          const buffer = (batchBuffers[i] as TensorArray).subarray(0, size * binding.rowSize) as TensorArray;
          gatherRows(binding.array.data, binding.rowSize, indices, buffer);
          const dims = [size, ...binding.array.shape.slice(1)];
          if (augmentation === undefined || transforms === undefined) {
            feeds[binding.input] = new Tensor(binding.array.dtype, buffer, dims);
            return;
          }
          const augmented = (augmentedBuffers[i] as Float32Array).subarray(0, size * binding.rowSize);
          applyImageTransforms(buffer as Float32Array, dims, transforms, augmentation.padding, augmented);
          feeds[binding.input] = new Tensor('float32', augmented, dims);
        });
        if (this.signature.labels !== undefined) {
          const labels = labelBuffer.subarray(0, size);
          gatherLabels(this.options.train.labels as NpyArray, indices, labels);
          feeds[this.signature.labels.name] = new Tensor('int64', labels, [size]);
        }
        const rate = rateOf(update, totalSteps);
        feeds[this.signature.step] = new Tensor('int64', new BigInt64Array([BigInt(update)]), []);
        feeds[this.signature.learningRate] = new Tensor('float32', new Float32Array([rate]), []);
        for (const [name, tensor] of this.values) feeds[name] = tensor;

        const began = performance.now();
        // The teacher's time counts as training time: it is part of every distillation update.
        if (this.teacher !== undefined) Object.assign(feeds, await this.teacher.forBatch(feeds, indices));
        const outputs = await this.session.run(feeds);
        const seconds = (performance.now() - began) / 1000;
        trainingSeconds += seconds;
        epochSeconds += seconds;
        const loss = scalarOf(outputs, this.signature.loss);
        this.keepUpdatedValues(outputs);
        this.updateAverages();
        const correct = this.signature.correct === undefined ? undefined : scalarOf(outputs, this.signature.correct);

        epochLoss += loss * size;
        epochSamples += size;
        if (correct !== undefined) epochCorrect += correct;
        samplesThisCall += size;
        stepsThisCall++;
        this.lastLoss = loss;
        this.position = { step: update, epoch, batchInEpoch: batch + 1 };
        this.epochTotals = { lossSum: epochLoss, correct: epochCorrect, samples: epochSamples, seconds: epochSeconds };
        const samplesPerSecond = trainingSeconds > 0 ? samplesThisCall / trainingSeconds : 0;
        hooks.onEvent?.({
          kind: 'step',
          epoch,
          epochs,
          batchInEpoch: batch + 1,
          batchesPerEpoch: this.batchesPerEpoch,
          step: update,
          totalSteps,
          loss,
          learningRate: rate,
          samplesPerSecond,
          etaSeconds: samplesPerSecond > 0 ? ((totalSteps - update) * batchSize) / samplesPerSecond : 0,
        });
        if (hooks.shouldStop?.() === true || this.position.step >= stepLimit) {
          stopped = batch + 1 < this.batchesPerEpoch;
          break;
        }
      }
      if (stopped) break;
      // Epoch finished: the stream continues from where the shuffle left it.
      this.epochRandomState = random.state;
      this.position = { step: this.position.step, epoch: epoch + 1, batchInEpoch: 0 };
      this.epochTotals = NO_TOTALS;
      const summary: EpochSummary = {
        epoch,
        trainLoss: epochSamples > 0 ? epochLoss / epochSamples : Number.NaN,
        trainAccuracy: this.signature.correct === undefined || epochSamples === 0 ? null : epochCorrect / epochSamples,
        validationAccuracy: this.options.validation === undefined ? null : await this.evaluate(this.options.validation),
        samples: epochSamples,
        seconds: epochSeconds,
      };
      this.history.push(summary);
      hooks.onEvent?.({ kind: 'epoch', summary, epochs });
      await hooks.afterEpoch?.(summary);
      if (hooks.shouldStop?.() === true) break;
    }
    return {
      completed: this.position.epoch >= epochs,
      position: this.position,
      finalLoss: this.lastLoss,
      history: [...this.history],
      samplesPerSecond: trainingSeconds > 0 ? samplesThisCall / trainingSeconds : 0,
      steps: stepsThisCall,
    };
  }

  /** Top-1 accuracy of the model as trained so far on labelled data. */
  async evaluate(dataset: Dataset): Promise<number> {
    this.requireOpen();
    const model = this.exportModel();
    const session = await createSession(model.toBytes(), this.options.target ?? { device: 'cpu', threads: 1 }, {
      file: `${this.options.model.source ?? 'model'} (being trained)`,
    });
    try {
      const result = await evaluateAccuracy(session, dataset, {
        batch: this.options.evaluationBatch ?? DEFAULT_EVALUATION_BATCH,
        output: this.signature.logits,
        ...(this.options.inputMap === undefined ? {} : { inputMap: this.options.inputMap }),
      });
      return result.accuracy;
    } finally {
      await session.release();
    }
  }

  /** The run as it stands, to continue later (see `TrainerOptions.resume`). Shares the tensors' memory. */
  checkpoint(): TrainingCheckpoint {
    this.requireOpen();
    const tensors = new Map<string, CheckpointTensor>();
    for (const [name, tensor] of this.values) {
      tensors.set(name, { type: tensor.type as CheckpointTensorType, dims: [...tensor.dims], data: tensor.data as TensorArray });
    }
    for (const [name, average] of this.averaged) {
      tensors.set(`${AVERAGED_TENSOR_PREFIX}${name}`, { type: 'float32', dims: [...(this.values.get(name) as Tensor).dims], data: average });
    }
    return {
      position: this.position,
      epochRandomState: this.epochRandomState,
      settings: this.settings,
      history: [...this.history],
      lastLoss: this.lastLoss,
      epochTotals: this.epochTotals,
      tensors,
    };
  }

  /**
   * A copy of the inference model with the trained parameters and updated buffers as its
   * initializers (see `writeTrainedParameters`): their bias-corrected moving averages with
   * weight averaging.
   */
  exportModel(): OnnxModel {
    this.requireOpen();
    const values = new Map<string, Float32Array>();
    const decay = this.options.weightAveraging?.decay;
    const averaging = decay !== undefined && this.position.step > 0;
    const correction = averaging ? 1 - decay ** this.position.step : 1;
    for (const name of this.averagedNames()) {
      const average = this.averaged.get(name);
      values.set(name, averaging && average !== undefined ? average.map((v) => v / correction) : ((this.values.get(name) as Tensor).data as Float32Array));
    }
    return writeTrainedParameters(this.options.model, this.signature, values);
  }

  /** Frees the step's session; the trainer cannot be used afterwards. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.session.release();
    } finally {
      await this.teacher?.release(); // its cache folder is deleted even when the step's session fails to close
    }
  }

  private keepUpdatedValues(outputs: TensorMap): void {
    const take = (input: string, output: string): void => {
      const tensor = outputs[output];
      if (tensor === undefined) {
        throw new ModelFormatError(
          `The training step has no output "${output}" (the new value of "${input}") that its signature promises. Rebuild the step with buildTrainingStep.`,
        );
      }
      this.values.set(input, tensor);
    };
    for (const p of this.signature.parameters) {
      take(p.name, p.updated);
      for (const s of p.state) take(s.name, s.updated);
    }
    for (const b of this.signature.buffers) take(b.name, b.updated);
  }

  /** The parameters and buffers: what the model is exported from, and what weight averaging averages. */
  private averagedNames(): string[] {
    return [...this.signature.parameters.map((p) => p.name), ...this.signature.buffers.map((b) => b.name)];
  }

  /** average = decay * average + (1 - decay) * value, after every update (bias-corrected on export). */
  private updateAverages(): void {
    const averaging = this.options.weightAveraging;
    if (averaging === undefined) return;
    const decay = averaging.decay;
    for (const [name, average] of this.averaged) {
      const value = (this.values.get(name) as Tensor).data as Float32Array;
      for (let i = 0; i < average.length; i++) average[i] = decay * (average[i] as number) + (1 - decay) * (value[i] as number);
    }
  }

  private checkResumable(checkpoint: TrainingCheckpoint): void {
    const saved = checkpoint.settings;
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(this.settings)])];
    const differing = keys.filter((key) => !isDeepStrictEqual(saved[key], this.settings[key]));
    if (differing.length > 0) {
      const describe = (value: unknown): string => (value === undefined ? 'unset' : JSON.stringify(value));
      throw new ConfigError(
        'The checkpoint belongs to a different training run, so resuming would not continue it: ' +
          differing.map((key) => `${key} is ${describe(saved[key])} in the checkpoint but ${describe(this.settings[key])} now`).join('; ') +
          '. Resume with the same model, data and options (or omit them to take the checkpoint\'s), or start a new run.',
      );
    }
    for (const name of expectedStateNames(this.signature)) {
      const saved = checkpoint.tensors.get(name);
      const dims = dimsOfInput(this.signature, name);
      if (saved === undefined || !isDeepStrictEqual([...saved.dims], [...dims])) {
        throw new ConfigError(
          `The checkpoint has ${saved === undefined ? 'no' : `a [${saved.dims.join(', ')}]`} tensor "${name}" where the training step ` +
            `expects [${dims.join(', ')}]: it was written for another model or step. Resume with the model it was made from.`,
        );
      }
    }
    if (this.options.weightAveraging === undefined) return;
    for (const name of this.averagedNames()) {
      const saved = checkpoint.tensors.get(`${AVERAGED_TENSOR_PREFIX}${name}`);
      const dims = dimsOfInput(this.signature, name);
      if (saved === undefined || saved.type !== 'float32' || !isDeepStrictEqual([...saved.dims], [...dims])) {
        throw new ConfigError(
          `The checkpoint has no float32 [${dims.join(', ')}] moving average "${AVERAGED_TENSOR_PREFIX}${name}" of parameter "${name}", ` +
            'which a run with weight averaging stores: it was written by another version or run. Resume with the checkpoint of this run, or start a new run.',
        );
      }
    }
  }

  private requireOpen(): void {
    if (this.released) throw new ConfigError('This Trainer was released; create a new one to continue training.');
  }
}

function checkWeightAveraging(averaging: WeightAveraging): void {
  if (!Number.isFinite(averaging.decay) || averaging.decay < 0 || averaging.decay >= 1) {
    throw new ConfigError(
      `The weight-averaging decay must be in [0, 1) (e.g. 0.99: an average over about the last 100 updates), got ${String(averaging.decay)}.`,
    );
  }
}

function checkWholeNumber(what: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`The ${what} must be a whole number >= ${min}, got ${String(value)}.`);
  }
}

function expectedStateNames(signature: TrainingStepSignature): string[] {
  return [
    ...signature.parameters.flatMap((p) => [p.name, ...p.state.map((s) => s.name)]),
    ...signature.buffers.map((b) => b.name),
  ];
}

function dimsOfInput(signature: TrainingStepSignature, name: string): readonly number[] {
  for (const p of signature.parameters) {
    if (p.name === name) return p.dims;
    for (const s of p.state) if (s.name === name) return s.dims;
  }
  return signature.buffers.find((b) => b.name === name)?.dims ?? [];
}

/** Which dataset array feeds each batch input of the step; checks element types and sample shapes. */
function bindBatchInputs(
  signature: TrainingStepSignature,
  dataset: Dataset,
  inputMap: Readonly<Record<string, string>> | undefined,
): { input: string; array: NpyArray; rowSize: number }[] {
  const arrays = [...dataset.features.keys()];
  return signature.batchInputs.map((input) => {
    const feature =
      inputMap?.[input.name] ??
      (signature.batchInputs.length === 1 && arrays.length === 1 ? (arrays[0] as string) : dataset.features.has(input.name) ? input.name : undefined);
    if (feature === undefined) {
      throw new ConfigError(
        `The model has inputs ${signature.batchInputs.map((i) => i.name).join(', ')} and the training data has arrays ` +
          `${arrays.join(', ')}: say which array feeds input "${input.name}" with inputMap, or name the arrays like the inputs.`,
      );
    }
    const array = dataset.feature(feature);
    const where = `Training array ${feature === DEFAULT_FEATURE ? '' : `${feature} `}${array.file === undefined ? '' : `(${array.file})`}`.trim();
    if (array.dtype !== input.type) {
      throw new DatasetError(
        `${where} is ${array.dtype} but model input "${input.name}" takes ${input.type}. Convert the data, e.g. numpy.save(path, x.astype(numpy.${input.type})).`,
        { file: array.file },
      );
    }
    const sample = array.shape.slice(1);
    const expected = input.dims.slice(1);
    if (sample.length !== expected.length || expected.some((d, i) => typeof d === 'number' && d !== sample[i])) {
      throw new DatasetError(
        `${where} has samples of shape [${sample.join(', ')}] but model input "${input.name}" takes [${input.dims.join(', ')}] ` +
          '(first axis = batch). Reshape the data to the model input.',
        { file: array.file },
      );
    }
    return { input: input.name, array, rowSize: sample.reduce((a, b) => a * b, 1) };
  });
}

/**
 * The run's augmentation with every field set, or undefined when there is none (or it changes
 * nothing). ConfigError when a batch input is not float32 images [N, C, H, W] wider and taller
 * than the shift, or when the teacher's outputs would be cached (they would be the outputs for
 * an earlier epoch's augmentation of each sample).
 */
function checkAugmentation(
  augmentation: ImageAugmentation | undefined,
  bindings: readonly { readonly input: string; readonly array: NpyArray }[],
  teacher: TeacherOptions | undefined,
): Required<ImageAugmentation> | undefined {
  if (augmentation === undefined) return undefined;
  checkImageAugmentation(augmentation);
  if (isIdentityAugmentation(augmentation)) return undefined;
  const translate = augmentation.translate ?? 0;
  for (const { input, array } of bindings) {
    const where = `training input "${input}"${array.file === undefined ? '' : ` (${array.file})`}`;
    if (array.dtype !== 'float32' || array.shape.length !== 4) {
      throw new ConfigError(
        `Image augmentation shifts and mirrors float32 images [N, C, H, W], but ${where} is ${array.dtype}[${array.shape.join(', ')}]. ` +
          'Turn augmentation off for this model, or give it image data.',
      );
    }
    const [, , height, width] = array.shape as [number, number, number, number];
    if (translate >= height || translate >= width) {
      throw new ConfigError(
        `Augmentation translate ${translate} shifts ${where} of ${height}x${width} pixels by its whole size or more. Use a shift smaller than the image.`,
      );
    }
  }
  if (teacher?.cache !== undefined && teacher.cache !== 'none') {
    throw new ConfigError(
      'The teacher cache keeps one output per sample across epochs, but with augmentation every epoch feeds a differently shifted or mirrored ' +
        "sample, so cached outputs would belong to other inputs. Use teacher cache 'none' (the default with augmentation), or turn augmentation off.",
    );
  }
  return { translate, padding: augmentation.padding ?? 'zero', flip: augmentation.flip === true };
}

function checkLabels(dataset: Dataset): void {
  const labels = dataset.labels;
  if (labels === undefined) {
    throw new DatasetError('Training needs labels (class ids, one per sample) for its loss. Give y (--labels).');
  }
  const where = labels.file === undefined ? 'The labels' : `Labels ${labels.file}`;
  if (!['int64', 'int32', 'int16', 'int8', 'uint8', 'uint16', 'uint32'].includes(labels.dtype) || labels.shape.length !== 1) {
    throw new DatasetError(
      `${where} are ${labels.dtype}[${labels.shape.join(', ')}]; training needs integer class ids, one per sample ([N]). ` +
        'Save them with numpy.save(path, y.astype(numpy.int64)).',
      { file: labels.file },
    );
  }
  for (let i = 0; i < labels.data.length; i++) {
    if (Number(labels.data[i]) < 0) {
      throw new DatasetError(`${where}: sample ${i} has the negative class id ${Number(labels.data[i])}. Class ids start at 0.`, {
        file: labels.file,
      });
    }
  }
}

function allocateLike(data: TensorArray, length: number): TensorArray {
  const Constructor = data.constructor as new (length: number) => TensorArray;
  return new Constructor(length);
}

function gatherRows(source: TensorArray, rowSize: number, indices: Uint32Array, target: TensorArray): void {
  const from = source as Float32Array;
  const to = target as Float32Array;
  for (let r = 0; r < indices.length; r++) {
    const start = (indices[r] as number) * rowSize;
    to.set(from.subarray(start, start + rowSize), r * rowSize);
  }
}

function gatherLabels(labels: NpyArray, indices: Uint32Array, target: BigInt64Array): void {
  const data = labels.data;
  if (data instanceof BigInt64Array) {
    for (let r = 0; r < indices.length; r++) target[r] = data[indices[r] as number] as bigint;
    return;
  }
  for (let r = 0; r < indices.length; r++) target[r] = BigInt(Number(data[indices[r] as number]));
}

function scalarOf(outputs: TensorMap, name: string): number {
  const tensor = outputs[name];
  if (tensor === undefined) {
    throw new ModelFormatError(`The training step has no output "${name}" that its signature promises. Rebuild the step with buildTrainingStep.`);
  }
  return Number((tensor.data as ArrayLike<number | bigint>)[0]);
}
