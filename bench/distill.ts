/**
 * `npm run bench:distill [-- --epochs 3 --threads 1 --ratio 0.5 --global --lr 0.005 --alpha 0.5
 * --temperature 2 --features pruned --feature-weight 1 --batch 64 --seed 0 --runs kd,crossEntropy
 * --translate 2 --flip --padding zero]`:
 * the distillation benchmark of issue #7.
 *
 * ResNet-8 (fixtures/resnet8-fmnist.onnx) pruned to 50% of the channels of every prunable group
 * (pruner-structured, L1 criterion; `--global` ranks channels across groups instead; BatchNorm
 * statistics re-estimated on 512 fmnist-calib samples as the pruner pass does), then recovered on
 * fmnist-train-10k for 3 epochs with the same budget, seed, batch (64), optimizer (AdamW, no
 * weight decay) and schedule (lr 5e-3, cosine to 0) by:
 * - `kd`: knowledge distillation from the unpruned model, alpha 0.5, T 2, with labels, plus the
 *   MSE (weight 1) of every ReLU output against the teacher's same tensor on the channels the
 *   pruned model kept (`features: 'pruned'`);
 * - `crossEntropy`: plain fine-tuning on the labels (no teacher);
 * - `kdNoLabels`: pure distillation (alpha 1) with the same feature term, labels never read;
 * - `kdLogitsOnly`: `kd` without the feature term (the recipe reported before the sweep);
 * - with `--translate N` and/or `--flip` (image augmentation, the same shifted/mirrored batch for
 *   teacher and student, drawn from the seed): also `kdAugmented` and `crossEntropyAugmented`,
 *   `kd` and `crossEntropy` on augmented batches, so fine-tuning gets the same augmentation.
 * The recipe is the best of the sweep in bench/distillSweep.ts (results in
 * bench/results/distill-sweep.json: pruning criterion and scope, optimizer, lr, batch, alpha, T,
 * feature terms), with plain fine-tuning given the same optimizer, lr, schedule, batch and seed.
 * Accuracy on fmnist-val-2k after every epoch; the acceptance figures use the accuracy after the
 * last epoch (not the best epoch, which would select on the evaluation split).
 * fmnist-train-10k is read from fixtures/ or, when absent there, from ../shared/fixtures/.
 * `--runs` runs a subset and writes nothing (exploration).
 *
 * Writes bench/results/distill.json.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distill, type DistillResult, type FeatureMatching } from '@open-autoglm/distiller-kd';
import { buildTrainingStep, countModelStats, learningRateAt, OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { modelFeeds, recalibrateBatchNorm, StructuredPruner } from '@open-autoglm/pruner-structured';
import { type Dataset, type ImageAugmentation, loadDataset, modelAccuracy, Trainer } from '@open-autoglm/runtime';
import { requireTrainingSplitFiles } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const EPOCHS = option('--epochs', 3);
const THREADS = option('--threads', 1);
const RATIO = option('--ratio', 0.5);
const BATCH = option('--batch', 64);
const LEARNING_RATE = option('--lr', 5e-3);
const TEMPERATURE = option('--temperature', 2);
const ALPHA = option('--alpha', 0.5);
const FEATURES = args.includes('--features') ? (args[args.indexOf('--features') + 1] ?? 'pruned') : 'pruned';
const FEATURE_WEIGHT = option('--feature-weight', 1);
const ONLY = args.includes('--runs') ? (args[args.indexOf('--runs') + 1] ?? '').split(',') : undefined;
const SEED = option('--seed', 0);
const TRANSLATE = option('--translate', 0);
const PADDING = args.includes('--padding') ? args[args.indexOf('--padding') + 1] : 'zero';
if (PADDING !== 'zero' && PADDING !== 'edge') {
  console.error(`--padding takes zero or edge, got "${PADDING}".`);
  process.exit(1);
}
const AUGMENTATION: ImageAugmentation | undefined =
  TRANSLATE > 0 || args.includes('--flip') ? { translate: TRANSLATE, flip: args.includes('--flip'), padding: PADDING } : undefined;
const target = { device: 'cpu' as const, threads: THREADS };

function trainFiles(): [string, string] {
  const files = requireTrainingSplitFiles('bench:distill');
  return [files.x, files.y];
}

function features(value: string): FeatureMatching {
  if (value === 'none' || value === 'auto' || value === 'stages' || value === 'pruned') return value;
  console.error(`--features takes none, auto, stages or pruned, got "${value}".`);
  process.exit(1);
}

interface RunFigures {
  readonly validationAccuracyPerEpoch: readonly (number | null)[];
  readonly trainLossPerEpoch: readonly number[];
  readonly finalAccuracy: number;
  readonly steps: number;
  readonly trainingSeconds: number;
  readonly samplesPerSecond: number;
}

function figuresOf(result: Pick<DistillResult, 'history' | 'steps' | 'samplesPerSecond'>): RunFigures {
  return {
    validationAccuracyPerEpoch: result.history.map((h) => h.validationAccuracy),
    trainLossPerEpoch: result.history.map((h) => +h.trainLoss.toFixed(5)),
    finalAccuracy: result.history.at(-1)?.validationAccuracy ?? Number.NaN,
    steps: result.steps,
    trainingSeconds: +result.history.reduce((s, h) => s + h.seconds, 0).toFixed(2),
    samplesPerSecond: Math.round(result.samplesPerSecond),
  };
}

/** Plain cross-entropy fine-tuning with the distillation runs' optimizer, schedule, batch and seed. */
async function fineTune(student: OnnxModel, train: Dataset, validation: Dataset, augmentation?: ImageAugmentation): Promise<RunFigures> {
  const step = buildTrainingStep(student, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adamw', weightDecay: 0 } }).model;
  const totalSteps = EPOCHS * Math.ceil(train.size / BATCH);
  const trainer = await Trainer.create({
    model: student,
    step,
    train,
    validation,
    epochs: EPOCHS,
    batchSize: BATCH,
    seed: SEED,
    target,
    learningRate: (update) => learningRateAt(update, { kind: 'cosine', lr: LEARNING_RATE, totalSteps }),
    ...(augmentation === undefined ? {} : { augmentation }),
  });
  try {
    const result = await trainer.train();
    return figuresOf({ ...result, steps: result.position.step });
  } finally {
    await trainer.release();
  }
}

const [trainX, trainY] = trainFiles();
const teacher = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
const train = await loadDataset({ x: trainX, y: trainY });
const unlabelled = await loadDataset({ x: trainX });
const validation = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });

const pruner = new StructuredPruner(teacher);
const groups = pruner.prunableGroups();
// Uniform: every prunable group keeps (1 - ratio) of its channels; --global: the ratio is spread by importance.
const GLOBAL = args.includes('--global');
const pruned = pruner.prune(GLOBAL ? { ratio: RATIO, criterion: 'l1' } : { perLayer: Object.fromEntries(groups.map((g) => [g.name, RATIO])), criterion: 'l1' });
const student = pruned.model;
const originalAccuracy = await modelAccuracy(teacher, validation, target, { batch: 250 });
const prunedRawAccuracy = await modelAccuracy(student, validation, target, { batch: 250 });
// As the pruner pass does in a run: BatchNorm statistics re-estimated on 512 calibration samples.
const calibration = await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy') });
await recalibrateBatchNorm(student, modelFeeds(calibration, student.graph.inputs.map((i) => i.name), 64, 512));
const prunedAccuracy = await modelAccuracy(student, validation, target, { batch: 250 });
const before = countModelStats(teacher.proto);
const after = countModelStats(student.proto);
console.log(
  `resnet8: ${(originalAccuracy * 100).toFixed(2)}% -> pruned ${RATIO * 100}% of the channels of ${groups.length} groups: ` +
    `${(prunedRawAccuracy * 100).toFixed(2)}%, ${(prunedAccuracy * 100).toFixed(2)}% after BatchNorm re-estimation (params ${before.params} -> ${after.params}, MACs ${before.macs} -> ${after.macs})`,
);

const common = { teacher, student, validation, epochs: EPOCHS, batchSize: BATCH, learningRate: LEARNING_RATE, seed: SEED, target, temperature: TEMPERATURE };
const runs: Record<string, RunFigures> = {};
const show = (name: string, figures: RunFigures): void => {
  runs[name] = figures;
  const perEpoch = figures.validationAccuracyPerEpoch.map((a) => (a === null ? 'n/a' : (a * 100).toFixed(2))).join(', ');
  console.log(`${name}: accuracy per epoch ${perEpoch} % (${figures.trainingSeconds} s of training, ${figures.samplesPerSecond} samples/s)`);
};
const wanted = (name: string): boolean => ONLY === undefined || ONLY.includes(name);
const withFeatures = { features: features(FEATURES), featureWeight: FEATURE_WEIGHT };
if (wanted('kd')) show('kd', figuresOf(await distill({ ...common, ...withFeatures, train, alpha: ALPHA })));
if (wanted('crossEntropy')) show('crossEntropy', await fineTune(student, train, validation));
if (wanted('kdNoLabels')) show('kdNoLabels', figuresOf(await distill({ ...common, ...withFeatures, train: unlabelled })));
if (wanted('kdLogitsOnly')) show('kdLogitsOnly', figuresOf(await distill({ ...common, train, alpha: ALPHA })));
if (AUGMENTATION !== undefined && wanted('kdAugmented')) {
  show('kdAugmented', figuresOf(await distill({ ...common, ...withFeatures, train, alpha: ALPHA, augmentation: AUGMENTATION })));
}
if (AUGMENTATION !== undefined && wanted('crossEntropyAugmented')) show('crossEntropyAugmented', await fineTune(student, train, validation, AUGMENTATION));
if (ONLY !== undefined) process.exit(0); // an exploratory subset: no acceptance, no results file

const kd = runs['kd'] as RunFigures;
const crossEntropy = runs['crossEntropy'] as RunFigures;
const noLabels = runs['kdNoLabels'] as RunFigures;
const recoveredShare = (noLabels.finalAccuracy - prunedAccuracy) / (kd.finalAccuracy - prunedAccuracy);
const acceptance = {
  kdWithinOnePointOfOriginal: kd.finalAccuracy >= originalAccuracy - 0.01,
  kdBeatsCrossEntropy: kd.finalAccuracy > crossEntropy.finalAccuracy,
  noLabelsRecoveredShareOfKd: +recoveredShare.toFixed(4),
  noLabelsRecoversAtLeast80Percent: recoveredShare >= 0.8,
  ...(AUGMENTATION === undefined
    ? {}
    : {
        kdAugmentedWithinOnePointOfOriginal: (runs['kdAugmented'] as RunFigures).finalAccuracy >= originalAccuracy - 0.01,
        kdAugmentedBeatsCrossEntropyAugmented: (runs['kdAugmented'] as RunFigures).finalAccuracy > (runs['crossEntropyAugmented'] as RunFigures).finalAccuracy,
      }),
};
console.log(`acceptance: ${JSON.stringify(acceptance)}`);

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const results = {
  benchmark: 'distill',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  threads: THREADS,
  method:
    `resnet8-fmnist pruned by pruner-structured (L1, ${RATIO * 100}% of the channels of ${GLOBAL ? 'all prunable groups, ranked globally' : 'every prunable group'}; ` +
    `BatchNorm re-estimated on 512 fmnist-calib samples), recovered for ${EPOCHS} epochs on ` +
    `fmnist-train-10k: batch ${BATCH}, AdamW (weight decay 0), lr ${LEARNING_RATE} cosine to 0, seed ${SEED}, same for every run; ` +
    `KD: alpha ${ALPHA}, T ${TEMPERATURE}, features ${FEATURES} (weight ${FEATURE_WEIGHT}; kdLogitsOnly: none); kdNoLabels: alpha 1, same features; ` +
    (AUGMENTATION === undefined
      ? ''
      : `kdAugmented, crossEntropyAugmented: the same on batches shifted by up to ${AUGMENTATION.translate} pixels (${PADDING} padding)${AUGMENTATION.flip === true ? ' and mirrored with probability 1/2' : ''}, teacher and student alike; `) +
    'accuracy on fmnist-val-2k after each epoch; acceptance on the last epoch',
  model: {
    original: { accuracy: originalAccuracy, params: before.params, macs: before.macs },
    pruned: { accuracyBeforeBatchNormReestimation: prunedRawAccuracy, accuracy: prunedAccuracy, params: after.params, macs: after.macs, prunedGroups: groups.length },
  },
  augmentation: AUGMENTATION ?? null,
  runs,
  acceptance,
  sweep: 'the levers tried for this recipe, one at a time, are in bench/results/distill-sweep.json (bench/distillSweep.ts)',
};
mkdirSync(join(here, 'results'), { recursive: true });
await writeFileAtomic(join(here, 'results', 'distill.json'), new TextEncoder().encode(`${JSON.stringify(results, null, 2)}\n`));
console.log(`wrote ${join('bench', 'results', 'distill.json')}`);
