import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, FileAccessError } from '@open-autoglm/core';
import {
  buildTrainingStep,
  type LearningRateSchedule,
  learningRateAt,
  OnnxModel,
  type TrainingStepSpec,
} from '@open-autoglm/onnx';
import { loadDataset } from '../dataset.js';
import { reinitializeParameters } from './reinitializeParameters.js';
import { Trainer, type TrainHooks, type TrainingResult } from './Trainer.js';
import type { TeacherCache, TeacherOptions } from './TeacherOutputs.js';
import { readCheckpoint, type TrainingCheckpoint, writeCheckpoint } from './TrainingCheckpoint.js';

/** A step spec that can cross a thread boundary (custom gradient rules are functions, so they cannot). */
export type TrainingJobSpec = Omit<TrainingStepSpec, 'rules'>;

/**
 * One training run described by plain data (paths and numbers), so it can be handed to a worker
 * thread. Options that shape the run's trajectory (spec, schedule, epochs, batch size, drop-last,
 * seed, re-initialization) may be left out when resuming: they are then taken from the checkpoint.
 */
export interface TrainingJob {
  /** The inference model to train (.onnx). */
  readonly model: string;
  /** Training inputs (`x.npy`, `set.npz:x`, or arrays by model input name) and integer labels (optional when no loss term reads labels, e.g. pure distillation). */
  readonly data: string | Readonly<Record<string, string>>;
  readonly labels?: string;
  /** The teacher of a step with distillation or mse loss terms (see `TeacherOptions`). */
  readonly teacher?: TrainingJobTeacher;
  /** Labelled validation data, evaluated after every epoch. */
  readonly validation?: { readonly data: string | Readonly<Record<string, string>>; readonly labels: string };
  readonly epochs?: number;
  readonly batchSize?: number;
  readonly dropLast?: boolean;
  /** Seeds the shuffling; default 0. */
  readonly seed?: number;
  /** The training step to build; default: cross-entropy with AdamW (PyTorch defaults). */
  readonly spec?: TrainingJobSpec;
  /** Default: constant 1e-3. */
  readonly schedule?: LearningRateSchedule;
  /** Re-initialize the parameters with this seed before training (see `reinitializeParameters`); default: train the model's own values. */
  readonly reinitSeed?: number | null;
  /** onnxruntime intra-op threads; default 1. */
  readonly threads?: number;
  /** Where to save the trained inference model when training completes. */
  readonly output?: string;
  /** Where to write checkpoints: after every epoch and when training stops early. */
  readonly checkpoint?: string;
  /** Continue the run saved in this checkpoint. */
  readonly resume?: string;
  /** Stop after this many updates in total (a checkpoint is written when `checkpoint` is set). */
  readonly maxSteps?: number;
}

/** A teacher described by plain data (see `TeacherOptions`). */
export interface TrainingJobTeacher {
  /** The teacher model (.onnx). */
  readonly model: string;
  readonly logits?: string;
  /** Student tensor -> teacher tensor, for the mse term's pairs. */
  readonly features?: Readonly<Record<string, string>>;
  /** Default `memory`. */
  readonly cache?: TeacherCache;
}

export interface TrainingJobResult extends TrainingResult {
  /** The trained model's path, when it was saved (training completed and `output` was given). */
  readonly output: string | null;
  /** The last checkpoint written, if any. */
  readonly checkpoint: string | null;
  /** Updates per epoch. */
  readonly stepsPerEpoch: number;
}

export const DEFAULT_TRAINING_SPEC: TrainingJobSpec = Object.freeze({
  loss: [{ kind: 'crossEntropy' }],
  optimizer: { kind: 'adamw' },
}) as TrainingJobSpec;
export const DEFAULT_SCHEDULE: LearningRateSchedule = Object.freeze({ kind: 'constant', lr: 1e-3 });
const DEFAULT_EPOCHS = 1;
const DEFAULT_BATCH = 64;

/**
 * Runs a training job in this thread: reads the model and data, re-initializes the parameters
 * when asked, builds the training step, trains (resuming when asked), writes checkpoints and
 * saves the trained model. Output folders are checked before any training, so bad paths fail
 * fast and nothing is written. See `trainInWorker` to run it off the main thread.
 */
export async function runTrainingJob(job: TrainingJob, hooks: TrainHooks = {}): Promise<TrainingJobResult> {
  const resume = job.resume === undefined ? undefined : await readCheckpoint(job.resume);
  const saved = resume?.settings ?? {};
  const pick = <T>(given: T | undefined, key: string, fallback: T): T =>
    given !== undefined ? given : key in saved ? (saved[key] as T) : fallback;
  const spec = pick<TrainingJobSpec>(job.spec, 'spec', DEFAULT_TRAINING_SPEC);
  const schedule = pick<LearningRateSchedule>(job.schedule, 'schedule', DEFAULT_SCHEDULE);
  const reinitSeed = pick<number | null>(job.reinitSeed, 'reinitSeed', null);
  const epochs = pick(job.epochs, 'epochs', DEFAULT_EPOCHS);
  const batchSize = pick(job.batchSize, 'batchSize', DEFAULT_BATCH);
  const dropLast = pick(job.dropLast, 'dropLast', false);
  const seed = pick(job.seed, 'seed', 0);
  learningRateAt(1, schedule); // a bad schedule fails now, not after the first epoch

  const modelBytes = await readModelFile(job.model);
  const teacherBytes = job.teacher === undefined ? undefined : await readModelFile(job.teacher.model);
  const inputs = job.teacher === undefined ? [job.model] : [job.model, job.teacher.model];
  for (const target of [job.output, job.checkpoint]) if (target !== undefined) await checkOutputPath(target, inputs);
  const model = OnnxModel.fromBytes(modelBytes, { source: job.model });
  await model.loadExternalData(job.model);
  if (reinitSeed !== null) reinitializeParameters(model, reinitSeed);
  const step = buildTrainingStep(model, spec).model;
  const [train, validation] = await Promise.all([
    loadDataset({ x: job.data, ...(job.labels === undefined ? {} : { y: job.labels }) }),
    job.validation === undefined ? undefined : loadDataset({ x: job.validation.data, y: job.validation.labels }),
  ]);

  const trainer = await Trainer.create({
    model,
    step,
    train,
    ...(validation === undefined ? {} : { validation }),
    epochs,
    batchSize,
    dropLast,
    seed,
    learningRate: (update) => learningRateAt(update, schedule),
    target: { device: 'cpu', threads: job.threads ?? 1 },
    settings: {
      spec,
      schedule,
      reinitSeed,
      modelSha256: createHash('sha256').update(modelBytes).digest('hex'),
      ...(teacherBytes === undefined ? {} : { teacherSha256: createHash('sha256').update(teacherBytes).digest('hex') }),
    },
    ...(resume === undefined ? {} : { resume }),
    ...(job.teacher === undefined || teacherBytes === undefined ? {} : { teacher: await teacherOptions(job.teacher, teacherBytes) }),
  });
  let checkpointWritten: string | null = null;
  const saveCheckpoint = async (checkpoint: TrainingCheckpoint): Promise<void> => {
    if (job.checkpoint === undefined) return;
    await writeCheckpoint(job.checkpoint, checkpoint);
    checkpointWritten = job.checkpoint;
  };
  try {
    const result = await trainer.train(
      { ...hooks, afterEpoch: async (summary) => {
        await hooks.afterEpoch?.(summary);
        await saveCheckpoint(trainer.checkpoint());
      } },
      job.maxSteps,
    );
    if (!result.completed) await saveCheckpoint(trainer.checkpoint());
    let output: string | null = null;
    if (result.completed && job.output !== undefined) {
      await trainer.exportModel().save(job.output);
      output = job.output;
    }
    return { ...result, output, checkpoint: checkpointWritten, stepsPerEpoch: trainer.stepsPerEpoch };
  } finally {
    await trainer.release();
  }
}

async function teacherOptions(teacher: TrainingJobTeacher, bytes: Uint8Array): Promise<TeacherOptions> {
  const model = OnnxModel.fromBytes(bytes, { source: teacher.model });
  await model.loadExternalData(teacher.model);
  return {
    model,
    ...(teacher.logits === undefined ? {} : { logits: teacher.logits }),
    ...(teacher.features === undefined ? {} : { features: teacher.features }),
    ...(teacher.cache === undefined ? {} : { cache: teacher.cache }),
  };
}

async function readModelFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileAccessError(
      `Model file ${file} ${code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a folder' : `cannot be read (${code ?? String(error)})`}. ` +
        'Give the path of an .onnx file.',
      { cause: error, file },
    );
  }
}

/** Fails before training when an output could not be written or would replace the model or the teacher. */
async function checkOutputPath(target: string, modelFiles: readonly string[]): Promise<void> {
  const folder = path.dirname(path.resolve(target));
  const folderStats = await stat(folder).catch(() => undefined);
  if (folderStats?.isDirectory() !== true) {
    throw new FileAccessError(`Cannot write ${target}: the folder ${folder} does not exist. Create it first or choose another path.`, {
      file: target,
    });
  }
  const real = (file: string): Promise<string> => realpath(file).catch(() => path.resolve(file));
  const written = await real(target);
  for (const [i, modelFile] of modelFiles.entries()) {
    if (written === (await real(modelFile))) {
      const what = i === 0 ? 'the model being trained' : 'the teacher model';
      throw new ConfigError(`Refusing to write ${target}: it is ${what}. Choose another output path.`, { file: target });
    }
  }
  const existing = await stat(target).catch(() => undefined);
  if (existing !== undefined && !existing.isFile()) {
    throw new FileAccessError(`Cannot write ${target}: a folder is in the way. Choose another path.`, { file: target });
  }
}
