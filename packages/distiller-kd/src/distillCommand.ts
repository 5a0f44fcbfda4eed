import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { type CommandInvocation, type CommandResult, ConfigError, FileAccessError, type PluginCommand } from '@open-autoglm/core';
import { OnnxModel } from '@open-autoglm/onnx';
import { loadDataset } from '@open-autoglm/runtime';
import { DEFAULT_ALPHA, DEFAULT_TEMPERATURE, distill } from './distill.js';
import type { FeatureMatching } from './featurePairs.js';

/** `autoglm distill`: recovers a compressed student by distillation from its teacher. */
export const distillCommand: PluginCommand = {
  name: 'distill',
  summary: 'recover a compressed model by knowledge distillation from its original',
  arguments: [],
  options: [
    { flags: '--teacher <model.onnx>', description: 'the model to learn from (usually the uncompressed original)', required: true },
    { flags: '--student <model.onnx>', description: 'the model to train (pruned, or QDQ with fake quantization)', required: true },
    { flags: '--data <x.npy>', description: 'training inputs (.npy, or set.npz:x)', required: true },
    { flags: '--labels <y.npy>', description: 'training labels; without them the loss is pure distillation (alpha 1)' },
    { flags: '--val <x.npy>', description: 'validation inputs: picks the best epoch (with --val-labels)' },
    { flags: '--val-labels <y.npy>', description: 'validation labels' },
    { flags: '--out <model.onnx>', description: 'where to write the distilled student', required: true },
    { flags: '--epochs <n>', description: 'passes over the training data (default 1; with --steps, an upper bound)' },
    { flags: '--steps <n>', description: 'a budget of updates instead of whole epochs' },
    { flags: '--temperature <t>', description: 'softmax temperature', defaultValue: String(DEFAULT_TEMPERATURE) },
    { flags: '--alpha <a>', description: `weight of the distillation term against cross-entropy (default ${DEFAULT_ALPHA} with labels, 1 without)` },
    { flags: '--lr <x>', description: 'peak learning rate (AdamW, cosine decay)', defaultValue: '0.001' },
    { flags: '--batch <n>', description: 'samples per update', defaultValue: '64' },
    { flags: '--features <pairs>', description: 'feature distillation: none, auto (the last feature map), stages (the last map of every resolution), pruned (every ReLU output, on the channels a pruned student kept), pruned-preactivation (the inputs of those ReLUs, through the teacher margin ReLU), or student[:teacher] tensor names, comma-separated', defaultValue: 'none' },
    { flags: '--translate <pixels>', description: 'augmentation: shift every training image by up to this many pixels (teacher and student see the same batch; turns the teacher cache off)' },
    { flags: '--flip', description: 'augmentation: mirror every training image left-right with probability 1/2' },
    { flags: '--padding <mode>', description: 'augmentation: what shifted-in pixels take, zero or edge', defaultValue: 'zero' },
    { flags: '--patience <n>', description: 'stop after this many epochs without a better validation accuracy' },
    { flags: '--threads <n>', description: 'onnxruntime intra-op threads', defaultValue: '1' },
    { flags: '--seed <n>', description: 'seeds the shuffling', defaultValue: '0' },
  ],
  async run(invocation: CommandInvocation): Promise<CommandResult> {
    const { options, cwd, logger } = invocation;
    const file = (name: string): string | undefined => {
      const value = options[name];
      return typeof value === 'string' ? path.resolve(cwd, value) : undefined;
    };
    const required = (name: string, flag: string): string => {
      const value = file(name);
      if (value === undefined) throw new ConfigError(`autoglm distill needs ${flag} <file>.`);
      return value;
    };
    const teacherFile = required('teacher', '--teacher');
    const studentFile = required('student', '--student');
    const out = required('out', '--out');
    const valData = file('val');
    const valLabels = file('valLabels');
    if ((valData === undefined) !== (valLabels === undefined)) {
      throw new ConfigError('Give both --val and --val-labels (validation needs labels to measure accuracy), or neither.');
    }
    const optional = (name: string, flag: string, integer: boolean, min: number, max = Number.POSITIVE_INFINITY): number | undefined => {
      const value = options[name];
      if (value === undefined) return undefined;
      const parsed = Number(value);
      if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || parsed < min || parsed > max) {
        throw new ConfigError(`${flag} must be ${integer ? 'a whole number' : 'a number'} >= ${min}${max < Number.POSITIVE_INFINITY ? ` and <= ${max}` : ''}, got "${String(value)}".`);
      }
      return parsed;
    };
    const epochs = optional('epochs', '--epochs', true, 1);
    const steps = optional('steps', '--steps', true, 1);
    const temperature = optional('temperature', '--temperature', false, Number.MIN_VALUE);
    const alpha = optional('alpha', '--alpha', false, 0, 1);
    const learningRate = optional('lr', '--lr', false, 0);
    const batchSize = optional('batch', '--batch', true, 1);
    const patience = optional('patience', '--patience', true, 1);
    const threads = optional('threads', '--threads', true, 1);
    const seed = optional('seed', '--seed', true, 0);
    const features = parseFeatures(options.features);
    const translate = optional('translate', '--translate', true, 0);
    const padding = parsePadding(options.padding);
    const flip = options.flip === true;
    const augmentation = (translate ?? 0) > 0 || flip ? { translate: translate ?? 0, flip, padding } : undefined;
    // An .npz member (`set.npz:x`) is read from the .npz file.
    const dataFiles = [file('data'), file('labels'), valData, valLabels].filter((f): f is string => f !== undefined).map((f) => f.replace(/(\.npz):[^/\\]*$/i, '$1'));
    await checkOutput(out, [teacherFile, studentFile, ...dataFiles]);

    const [teacher, student, train, validation] = await Promise.all([
      OnnxModel.load(teacherFile),
      OnnxModel.load(studentFile),
      loadDataset({ x: required('data', '--data'), ...(file('labels') === undefined ? {} : { y: file('labels') as string }) }),
      valData === undefined ? undefined : loadDataset({ x: valData, y: valLabels as string }),
    ]);
    const result = await distill({
      teacher,
      student,
      train,
      ...(validation === undefined ? {} : { validation }),
      ...(epochs === undefined ? {} : { epochs }),
      ...(steps === undefined ? {} : { steps }),
      ...(temperature === undefined ? {} : { temperature }),
      ...(alpha === undefined ? {} : { alpha }),
      ...(learningRate === undefined ? {} : { learningRate }),
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(patience === undefined ? {} : { patience }),
      ...(seed === undefined ? {} : { seed }),
      features,
      ...(augmentation === undefined ? {} : { augmentation }),
      target: { device: 'cpu', threads: threads ?? 1 },
      ...(invocation.signal === undefined ? {} : { signal: invocation.signal }),
      onEvent: (event) => {
        if (event.kind !== 'epoch') return;
        const { summary } = event;
        const validated = summary.validationAccuracy === null ? '' : `, validation accuracy ${(summary.validationAccuracy * 100).toFixed(2)}%`;
        logger.info(`epoch ${summary.epoch + 1}/${event.epochs}: loss ${summary.trainLoss.toFixed(4)}${validated}`);
      },
    });
    await result.model.save(out);

    const data = {
      output: out,
      steps: result.steps,
      stop: result.stop,
      alpha: result.alpha,
      temperature: result.temperature,
      labelled: train.labels !== undefined,
      validationAccuracy: result.validationAccuracy,
      bestEpoch: result.bestEpoch,
      requantizedWeights: result.requantizedWeights,
      epochs: result.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, validationAccuracy: h.validationAccuracy })),
      features: result.features.map((f) => ({ student: f.student, teacher: f.teacher, projected: f.projection !== undefined })),
      augmentation: augmentation ?? null,
      samplesPerSecond: result.samplesPerSecond,
    };
    const lines = [
      `distilled ${path.relative(cwd, studentFile) || studentFile} from ${path.relative(cwd, teacherFile) || teacherFile}: ` +
        `${result.steps} updates (${result.stop}), alpha ${result.alpha}, T ${result.temperature}${train.labels === undefined ? ', no labels' : ''}`,
      ...(result.validationAccuracy === null
        ? []
        : [`validation accuracy ${(result.validationAccuracy * 100).toFixed(2)}%${result.bestEpoch === null ? ' (final model)' : ` (best epoch ${result.bestEpoch + 1})`}`]),
      `wrote ${out}`,
    ];
    return { summary: lines.join('\n'), data };
  },
};

function parseFeatures(value: unknown): FeatureMatching {
  if (value === undefined || value === 'none') return 'none';
  if (value === 'auto' || value === 'stages' || value === 'pruned' || value === 'pruned-preactivation') return value;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError('--features takes none, auto, stages, pruned, pruned-preactivation, or student[:teacher] tensor names separated by commas.');
  }
  return value.split(',').map((entry) => {
    const [student, teacher, extra] = entry.trim().split(':');
    if (student === undefined || student === '' || teacher === '' || extra !== undefined) {
      throw new ConfigError(`--features entry "${entry}" is not student[:teacher] (tensor names, e.g. /layer3/relu:/layer3/relu).`);
    }
    return teacher === undefined ? { student } : { student, teacher };
  });
}

function parsePadding(value: unknown): 'zero' | 'edge' {
  if (value === undefined || value === 'zero' || value === 'edge') return value ?? 'zero';
  throw new ConfigError(`--padding takes zero or edge, got "${String(value)}".`);
}

/** The output folder exists and the output is not one of the inputs: checked before any training. */
async function checkOutput(out: string, inputs: readonly string[]): Promise<void> {
  const folder = path.dirname(out);
  if ((await stat(folder).catch(() => undefined))?.isDirectory() !== true) {
    throw new FileAccessError(`Cannot write ${out}: the folder ${folder} does not exist. Create it first or choose another --out.`, { file: out });
  }
  const real = await realpath(out).catch(() => out);
  for (const input of inputs) {
    if (real === (await realpath(input).catch(() => input))) {
      throw new ConfigError(`Refusing to write ${out}: it is an input of this run (${input}). Choose another --out.`, { file: out });
    }
  }
}
