/**
 * `npx tsx --conditions=@open-autoglm/source bench/distillSweep.ts -- --only <name,name...>`: the
 * recipe sweep behind issue #7's recovery of ResNet-8 pruned to 50% of its channels.
 *
 * Every variant below changes one lever of the baseline recipe (the one `bench/distill.ts`
 * reported before the sweep: uniform L1 pruning, BatchNorm re-estimated on 512 fmnist-calib
 * samples, KD alpha 0.5 T 2, AdamW without weight decay, lr 5e-3 cosine to 0, batch 64) or of
 * the best recipe found so far, with the same budget (3 epochs over fmnist-train-10k) and seed
 * (`--seed`, default 0; other seeds are recorded as `name@seedN`, to see the noise).
 * Variants run one after another (the machine is shared; the runs are single-threaded); each
 * result is added to bench/results/distill-sweep.json (replacing an earlier run of the same name)
 * as soon as it finishes, so the file records everything tried. Accuracy is on fmnist-val-2k
 * after every epoch; the figure that counts is the last epoch's. Every run also records the
 * final model's accuracy with its BatchNorm statistics re-estimated on fmnist-train-10k.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distill, type FeatureMatching } from '@open-autoglm/distiller-kd';
import { OnnxModel, type OptimizerSpec, writeFileAtomic } from '@open-autoglm/onnx';
import {
  computeParameterGradients,
  measureInputMeans,
  type ImportanceCriterion,
  modelFeeds,
  recalibrateBatchNorm,
  StructuredPruner,
} from '@open-autoglm/pruner-structured';
import { augmentImageBatch, Dataset, DEFAULT_FEATURE, type ImageAugmentation, loadDataset, modelAccuracy, SeededRandom } from '@open-autoglm/runtime';
import { benchOption, requireTrainingSplitFiles } from './benchSupport.js';

interface PruningChoice {
  /** `uniform`: every prunable group keeps half its channels; `global`: half of all channels, ranked across groups. */
  readonly scope: 'uniform' | 'global';
  readonly criterion: ImportanceCriterion;
  /** Samples of fmnist-train-10k (from its start) the BatchNorm statistics are re-estimated on; default 512 of fmnist-calib. */
  readonly batchNormSamples?: number;
  /** Fold the mean contribution of removed channels into the next layer's bias (measured on 512 fmnist-calib samples). */
  readonly biasCompensation?: boolean;
}

interface Recipe {
  readonly pruning: PruningChoice;
  /** 0 is plain cross-entropy fine-tuning (the teacher's term weighs nothing). */
  readonly alpha: number;
  readonly temperature: number;
  readonly features?: FeatureMatching;
  readonly featureWeight?: number;
  readonly optimizer: OptimizerSpec;
  readonly learningRate: number;
  readonly warmupSteps?: number;
  /** Default cosine. */
  readonly schedule?: 'cosine' | 'linear';
  readonly batchSize: number;
  /** Default 3, the budget; more only to see where longer training ends (not a candidate recipe). */
  readonly epochs?: number;
  /** Without labels (pure distillation; alpha must be 1). */
  readonly unlabelled?: boolean;
  /** On-the-fly shifts/flips of every batch, the same for teacher and student (teacher cache off). */
  readonly augmentation?: ImageAugmentation;
  /** Per-update decay of an exponential moving average of the weights, evaluated instead of the last weights. */
  readonly weightAveragingDecay?: number;
}

const baseline: Recipe = {
  pruning: { scope: 'uniform', criterion: 'l1' },
  alpha: 0.5,
  temperature: 2,
  optimizer: { kind: 'adamw', weightDecay: 0 },
  learningRate: 5e-3,
  batchSize: 64,
};
const globalL1: PruningChoice = { scope: 'global', criterion: 'l1' };
const shiftFlip: ImageAugmentation = { translate: 2, flip: true };
const sgd = (weightDecay: number): OptimizerSpec => ({ kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay });

/** The variants, each named after what it changes. */
const VARIANTS: Record<string, Recipe> = {
  baseline,
  'ce-baseline': { ...baseline, alpha: 0 },
  'prune-global-l1': { ...baseline, pruning: { scope: 'global', criterion: 'l1' } },
  'prune-uniform-fpgm': { ...baseline, pruning: { scope: 'uniform', criterion: 'fpgm' } },
  'prune-uniform-bn': { ...baseline, pruning: { scope: 'uniform', criterion: 'bn' } },
  'prune-uniform-taylor': { ...baseline, pruning: { scope: 'uniform', criterion: 'taylor' } },
  'prune-global-bn': { ...baseline, pruning: { scope: 'global', criterion: 'bn' } },
  'prune-global-taylor': { ...baseline, pruning: { scope: 'global', criterion: 'taylor' } },
  'bn-reestimate-10k': { ...baseline, pruning: { ...baseline.pruning, batchNormSamples: 10_000 } },
  'sgd-nesterov-lr0.05-wd5e-4-warmup': { ...baseline, optimizer: sgd(5e-4), learningRate: 0.05, warmupSteps: 47 },
  'sgd-nesterov-lr0.1-wd5e-4-warmup': { ...baseline, optimizer: sgd(5e-4), learningRate: 0.1, warmupSteps: 47 },
  'adamw-wd0.05': { ...baseline, optimizer: { kind: 'adamw', weightDecay: 0.05 } },
  'adamw-lr0.01-warmup': { ...baseline, learningRate: 0.01, warmupSteps: 47 },
  'batch32': { ...baseline, batchSize: 32 },
  'alpha0.9-T4': { ...baseline, alpha: 0.9, temperature: 4 },
  'alpha0.9-T2': { ...baseline, alpha: 0.9 },
  'features-auto-w0.1': { ...baseline, features: 'auto', featureWeight: 0.1 },
  'features-stages-w0.1': { ...baseline, features: 'stages', featureWeight: 0.1 },
  'prune-bias-compensation': { ...baseline, pruning: { ...baseline.pruning, biasCompensation: true } },
  'adamw-lr0.003': { ...baseline, learningRate: 3e-3 },
  'adamw-lr0.008': { ...baseline, learningRate: 8e-3 },
  'alpha0.3-T2': { ...baseline, alpha: 0.3 },
  'alpha0.7-T3': { ...baseline, alpha: 0.7, temperature: 3 },
  'kept-channels-w0.1': { ...baseline, features: 'pruned', featureWeight: 0.1 },
  'kept-channels-w1': { ...baseline, features: 'pruned', featureWeight: 1 },
  'kept-channels-w3': { ...baseline, features: 'pruned', featureWeight: 3 },
  'kept-channels-w10': { ...baseline, features: 'pruned', featureWeight: 10 },
  'kept-channels-w1-lr0.008': { ...baseline, features: 'pruned', featureWeight: 1, learningRate: 8e-3 },
  'kept-channels-w1-alpha0.9-T4': { ...baseline, features: 'pruned', featureWeight: 1, alpha: 0.9, temperature: 4 },
  'kept-channels-w1-global-l1': { ...baseline, features: 'pruned', featureWeight: 1, pruning: { scope: 'global', criterion: 'l1' } },
  'kept-channels-w1-batch32': { ...baseline, features: 'pruned', featureWeight: 1, batchSize: 32 },
  'kept-channels-w1-global-bn': { ...baseline, features: 'pruned', featureWeight: 1, pruning: { scope: 'global', criterion: 'bn' } },
  'kept-channels-w2': { ...baseline, features: 'pruned', featureWeight: 2 },
  'kept-channels-w1-lr0.003': { ...baseline, features: 'pruned', featureWeight: 1, learningRate: 3e-3 },
  'kept-channels-w1-ceiling-6-epochs': { ...baseline, features: 'pruned', featureWeight: 1, epochs: 6 },
  'kept-channels-w1-unlabelled': { ...baseline, features: 'pruned', featureWeight: 1, alpha: 1, unlabelled: true },
  'ceiling-10-epochs': { ...baseline, epochs: 10 },
  // Consistent augmentation (Beyer et al. 2022): teacher and student see the same shifted/mirrored batch.
  'aug-t2-flip': { ...baseline, augmentation: shiftFlip },
  'ce-aug-t2-flip': { ...baseline, alpha: 0, augmentation: shiftFlip },
  'ce-aug-flip': { ...baseline, alpha: 0, augmentation: { flip: true } },
  'global-l1-aug-t2-flip': { ...baseline, pruning: globalL1, augmentation: shiftFlip },
  'kept-channels-w1-aug-t2-flip': { ...baseline, features: 'pruned', featureWeight: 1, augmentation: shiftFlip },
  'kept-channels-w1-global-l1-aug-t2-flip': { ...baseline, features: 'pruned', featureWeight: 1, pruning: globalL1, augmentation: shiftFlip },
  'kept-channels-w1-aug-flip': { ...baseline, features: 'pruned', featureWeight: 1, augmentation: { flip: true } },
  'kept-channels-w1-aug-t1-flip': { ...baseline, features: 'pruned', featureWeight: 1, augmentation: { translate: 1, flip: true } },
  'kept-channels-w1-global-l1-aug-flip': { ...baseline, features: 'pruned', featureWeight: 1, pruning: globalL1, augmentation: { flip: true } },
  'kept-channels-w1-aug-t1': { ...baseline, features: 'pruned', featureWeight: 1, augmentation: { translate: 1 } },
  'kept-channels-w1-aug-t2-flip-ceiling-10-epochs': { ...baseline, features: 'pruned', featureWeight: 1, augmentation: shiftFlip, epochs: 10 },
  'kept-channels-w1-ceiling-10-epochs': { ...baseline, features: 'pruned', featureWeight: 1, epochs: 10 },
  // Polyak averaging of the weights (and BatchNorm statistics), the averaged model evaluated.
  'kept-channels-w1-ema0.99': { ...baseline, features: 'pruned', featureWeight: 1, weightAveragingDecay: 0.99 },
  'kept-channels-w1-ema0.995': { ...baseline, features: 'pruned', featureWeight: 1, weightAveragingDecay: 0.995 },
  // Heo et al. 2019: pre-ReLU features, margin ReLU of the teacher's expected negative response on both sides.
  'preactivation-margin-w1': { ...baseline, features: 'pruned-preactivation', featureWeight: 1 },
  'preactivation-margin-w3': { ...baseline, features: 'pruned-preactivation', featureWeight: 3 },
  'preactivation-margin-w10': { ...baseline, features: 'pruned-preactivation', featureWeight: 10 },
  // Schedule shapes (471 updates in 3 epochs): linear decay; one-cycle-like (30% linear warm-up, then cosine).
  'kept-channels-w1-linear': { ...baseline, features: 'pruned', featureWeight: 1, schedule: 'linear' },
  'kept-channels-w1-warmup30pc': { ...baseline, features: 'pruned', featureWeight: 1, warmupSteps: 141 },
  'kept-channels-w1-lr0.01-warmup30pc': { ...baseline, features: 'pruned', featureWeight: 1, learningRate: 0.01, warmupSteps: 141 },
  // Temperature and alpha with the feature term (only tried with logits alone before).
  'kept-channels-w1-T1': { ...baseline, features: 'pruned', featureWeight: 1, temperature: 1 },
  'kept-channels-w1-T4': { ...baseline, features: 'pruned', featureWeight: 1, temperature: 4 },
  'kept-channels-w1-alpha0.3': { ...baseline, features: 'pruned', featureWeight: 1, alpha: 0.3 },
};

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const EPOCHS = 3;
const SEED = Number(benchOption('--seed') ?? 0);
const target = { device: 'cpu' as const, threads: 1 };
const resultsFile = join(here, 'results', 'distill-sweep.json');

const only = (benchOption('--only') ?? '').split(',').filter((n) => n !== '');
const unknown = only.filter((n) => !(n in VARIANTS));
if (only.length === 0 || unknown.length > 0) {
  console.error(`Give --only with variant names among: ${Object.keys(VARIANTS).join(', ')}${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}.`);
  process.exit(1);
}
const trainingSplit = requireTrainingSplitFiles('The distillation sweep');

const teacher = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
const train = await loadDataset({ x: trainingSplit.x, y: trainingSplit.y });
const unlabelled = await loadDataset({ x: trainingSplit.x });
const validation = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });
const calibration = await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy'), y: join(fixtures, 'fmnist-calib.y.npy') });
const originalAccuracy = await modelAccuracy(teacher, validation, target, { batch: 250 });

/**
 * The teacher's accuracy on fmnist-val-2k shifted and mirrored as the recipes augment (one seeded
 * draw per sample): what its soft labels are worth on the batches it teaches on. It was trained
 * without augmentation, so it is not invariant to them.
 */
const PROBED_AUGMENTATIONS: Record<string, ImageAugmentation> = {
  'translate 1': { translate: 1 },
  'translate 2': { translate: 2 },
  flip: { flip: true },
  'translate 1 + flip': { translate: 1, flip: true },
  'translate 2 + flip': shiftFlip,
};
const teacherAccuracyUnderAugmentation: Record<string, number> = { none: originalAccuracy };
for (const [name, augmentation] of Object.entries(PROBED_AUGMENTATIONS)) {
  const images = validation.feature(DEFAULT_FEATURE);
  const augmented = augmentImageBatch(images.data as Float32Array, images.shape, augmentation, new SeededRandom(SEED));
  const data = new Dataset(new Map([[DEFAULT_FEATURE, { ...images, data: augmented }]]), validation.labels);
  teacherAccuracyUnderAugmentation[name] = await modelAccuracy(teacher, data, target, { batch: 250 });
}
console.log(`teacher accuracy on augmented fmnist-val-2k: ${JSON.stringify(teacherAccuracyUnderAugmentation)}`);

interface PrunedStudent {
  readonly model: OnnxModel;
  readonly params: number;
  readonly keptChannels: Record<string, number>;
  readonly accuracy: number;
}

async function prunedStudent(choice: PruningChoice): Promise<PrunedStudent> {
  const pruner = new StructuredPruner(teacher);
  const groups = pruner.prunableGroups();
  const gradients =
    choice.criterion === 'taylor' ? await computeParameterGradients(teacher, pruner.taylorParameters(), calibration) : undefined;
  const inputs = teacher.graph.inputs.map((i) => i.name);
  const common = {
    criterion: choice.criterion,
    ...(gradients === undefined ? {} : { gradients }),
    ...(choice.scope === 'global' ? { ratio: 0.5 } : { perLayer: Object.fromEntries(groups.map((g) => [g.name, 0.5])) }),
  };
  const inputMeans =
    choice.biasCompensation === true
      ? await measureInputMeans(teacher, pruner.biasCompensationTargets(common), modelFeeds(calibration, inputs, 64, 512))
      : undefined;
  const result = pruner.prune({ ...common, ...(inputMeans === undefined ? {} : { inputMeans }) });
  const model = result.model;
  const feeds = choice.batchNormSamples === undefined ? modelFeeds(calibration, inputs, 64, 512) : modelFeeds(train, inputs, 64, choice.batchNormSamples);
  await recalibrateBatchNorm(model, feeds);
  return {
    model,
    params: result.report.actual.params,
    keptChannels: Object.fromEntries(result.report.groups.map((g) => [g.group, g.unitsAfter])),
    accuracy: await modelAccuracy(model, validation, target, { batch: 250 }),
  };
}

interface SweepFile {
  benchmark: 'distill-sweep';
  machine: { cpu: string; logicalCpus: number; platform: string };
  versions: { node: string; onnxruntimeNode: string };
  threads: number;
  budget: string;
  originalAccuracy: number;
  teacherAccuracyUnderAugmentation: Record<string, number>;
  runs: Record<string, unknown>;
}

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
for (const name of only) {
  const recipe = VARIANTS[name] as Recipe;
  const student = await prunedStudent(recipe.pruning);
  const result = await distill({
    teacher,
    student: student.model,
    train: recipe.unlabelled === true ? unlabelled : train,
    validation,
    epochs: recipe.epochs ?? EPOCHS,
    seed: SEED,
    target,
    alpha: recipe.alpha,
    temperature: recipe.temperature,
    features: recipe.features ?? 'none',
    featureWeight: recipe.featureWeight ?? 1,
    optimizer: recipe.optimizer,
    learningRate: recipe.learningRate,
    warmupSteps: recipe.warmupSteps ?? 0,
    ...(recipe.schedule === undefined ? {} : { schedule: recipe.schedule }),
    batchSize: recipe.batchSize,
    ...(recipe.augmentation === undefined ? {} : { augmentation: recipe.augmentation }),
    ...(recipe.weightAveragingDecay === undefined ? {} : { weightAveraging: { decay: recipe.weightAveragingDecay } }),
  });
  // Lever of its own, measured on every run: the BatchNorm statistics of the final model
  // re-estimated on all of fmnist-train-10k (their running averages trail the last updates).
  const reestimated = result.model.clone();
  await recalibrateBatchNorm(reestimated, modelFeeds(train, teacher.graph.inputs.map((i) => i.name), 250, train.size));
  const accuracyAfterBatchNormReestimation = await modelAccuracy(reestimated, validation, target, { batch: 250 });
  const perEpoch = result.history.map((h) => h.validationAccuracy);
  const run = {
    date: new Date().toISOString(),
    seed: SEED,
    recipe,
    pruned: { params: student.params, keptChannels: student.keptChannels, accuracyAfterBatchNormReestimation: student.accuracy },
    validationAccuracyPerEpoch: perEpoch,
    trainLossPerEpoch: result.history.map((h) => +h.trainLoss.toFixed(5)),
    trainAccuracyPerEpoch: result.history.map((h) => (h.trainAccuracy === null ? null : +h.trainAccuracy.toFixed(4))),
    finalAccuracy: perEpoch.at(-1) ?? null,
    finalAccuracyAfterBatchNormReestimation: accuracyAfterBatchNormReestimation,
    trainingSeconds: +result.history.reduce((s, h) => s + h.seconds, 0).toFixed(2),
  };
  console.log(`${name}: params ${student.params}, pruned ${(student.accuracy * 100).toFixed(2)}%, per epoch ${perEpoch.map((a) => ((a ?? 0) * 100).toFixed(2)).join(', ')} % (${run.trainingSeconds} s), BatchNorm re-estimated on 10k: ${(accuracyAfterBatchNormReestimation * 100).toFixed(2)}%`);
  const previous = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as SweepFile) : undefined;
  const file: SweepFile = {
    benchmark: 'distill-sweep',
    machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
    versions: { node: process.version, onnxruntimeNode: ortVersion },
    threads: target.threads,
    budget: `${EPOCHS} epochs over fmnist-train-10k (shuffling and projections seeded by each run's seed); accuracy on fmnist-val-2k after each epoch`,
    originalAccuracy,
    // Seed 0's draw of augmentations, the one the README quotes; runs of other seeds keep it.
    teacherAccuracyUnderAugmentation: SEED === 0 || previous === undefined ? teacherAccuracyUnderAugmentation : previous.teacherAccuracyUnderAugmentation,
    runs: { ...previous?.runs, [SEED === 0 ? name : `${name}@seed${SEED}`]: run },
  };
  await writeFileAtomic(resultsFile, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}
