/**
 * `npm run bench:distill-mixup -- --only <name,name...> [--seed N] [--quick]`: mixup inputs as
 * *function matching* (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
 * consistent") for issue #7's recovery of ResNet-8 pruned to 50% of its channels.
 *
 * The student matches the teacher on convex combinations x = lam * a + (1 - lam) * b of training
 * images: the teacher labels every mixed image, so no label is needed, and a mixed image asks for
 * the teacher's whole output distribution between two classes rather than one confident class.
 * Unlike shifts and flips (which this teacher, trained without them, is not invariant to: it falls
 * to 76.75% under shift 2 + flip), mixing only changes where the teacher is asked, not whether
 * its answer is right: there is no ground truth for a mixed image to be wrong about.
 *
 * Prototyped without product changes: the script builds the training set itself (seeded), three
 * copies of fmnist-train-10k (one per epoch of the 3-epoch budget), each image paired with a
 * partner drawn by a fresh permutation per copy, and runs ONE `distill(...)` epoch over the 30k
 * samples: the same samples seen and the same cosine schedule over (about) the same number of
 * updates as 3 epochs over 10k (469 updates against 3 x 157 = 471, the 10k epochs each ending
 * on a short batch). Pure KD (alpha 1; the label of a mixed image is undefined) plus the
 * kept-channel feature term (`features: 'pruned'`, weight 1) of the current best recipe; the
 * `*-labelled-*` variants keep labels instead (a mixed image takes its dominant image's) and the
 * best recipe's alpha 0.5.
 *
 * The set lives in memory (a `Dataset` of the mixed arrays; nothing is written but the results).
 * The teacher runs on every batch (`teacherCache: 'none'`): every sample is seen once, so a cache
 * would hold 30k x ~110 KB of kept-channel features for nothing.
 *
 * Every run ends with two figures on fmnist-val-2k: with the BatchNorm statistics training left
 * (running averages over mixed batches, whose pixel statistics differ from clean images) and with
 * them re-estimated on clean fmnist-train-10k (`recalibrateBatchNorm`, no weight change).
 * The comparison figures of the current best recipe (KD alpha 0.5, T 2, `features: 'pruned'`,
 * 3 epochs over clean fmnist-train-10k) are read from bench/results/distill-sweep.json, and the same
 * without labels from bench/results/distill.json, not re-run; `clean-T2` and
 * `clean-labelled-alpha0.5-T2` re-run both in this script's one-epoch form.
 *
 * Results go to bench/results/distill-mixup.json (each run replaces an earlier one of the same
 * name; other seeds as `name@seedN`). `--quick`: 1000 images per copy, for a smoke run (not
 * written to the results).
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetError } from '@open-autoglm/core';
import { distill } from '@open-autoglm/distiller-kd';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { modelFeeds, recalibrateBatchNorm, StructuredPruner } from '@open-autoglm/pruner-structured';
import { Dataset, DEFAULT_FEATURE, loadDataset, modelAccuracy, type NpyArray, SeededRandom } from '@open-autoglm/runtime';
import { benchOption, requireTrainingSplitFiles } from './benchSupport.js';

/** How each of the three copies of the training split is built. */
interface MixedSet {
  /** Beta(mixingShape, mixingShape) draws the weight lam of each sample's own image. */
  readonly mixingShape: number;
  /** Share of each copy's images left clean (a random subset, redrawn per copy); the others are mixed. */
  readonly cleanShare: number;
  /**
   * `dominant`: the set carries labels, a clean image its own, a mixed one that of the image
   * weighing at least 1/2 in it (`distill` takes class indices, not mixed soft labels); default none.
   */
  readonly labels?: 'dominant';
}

interface MixupRecipe {
  readonly set: MixedSet;
  readonly temperature: number;
  /** Weight of the distillation term; below 1 only with labels. Default 1 (pure KD). */
  readonly alpha?: number;
}

/** The variants, each named after its set and temperature. */
const VARIANTS: Record<string, MixupRecipe> = {
  // Control: the same one-epoch-over-3-copies form on clean images (pure KD, no mixing).
  'clean-T2': { set: { mixingShape: 1, cleanShare: 1 }, temperature: 2 },
  'mixup-beta1-T2': { set: { mixingShape: 1, cleanShare: 0 }, temperature: 2 },
  'mixup-beta0.2-T2': { set: { mixingShape: 0.2, cleanShare: 0 }, temperature: 2 },
  'mixup-beta0.4-T2': { set: { mixingShape: 0.4, cleanShare: 0 }, temperature: 2 },
  'half-clean-beta1-T2': { set: { mixingShape: 1, cleanShare: 0.5 }, temperature: 2 },
  'half-clean-beta0.2-T2': { set: { mixingShape: 0.2, cleanShare: 0.5 }, temperature: 2 },
  'mixup-beta1-T1': { set: { mixingShape: 1, cleanShare: 0 }, temperature: 1 },
  'mixup-beta1-T4': { set: { mixingShape: 1, cleanShare: 0 }, temperature: 4 },
  'half-clean-beta1-T1': { set: { mixingShape: 1, cleanShare: 0.5 }, temperature: 1 },
  'half-clean-beta1-T4': { set: { mixingShape: 1, cleanShare: 0.5 }, temperature: 4 },
  // With labels (the dominant image's for a mixed one) and the current best recipe's alpha 0.5;
  // the clean one is that recipe itself in this one-epoch-over-3-copies form (a check of the form).
  'clean-labelled-alpha0.5-T2': { set: { mixingShape: 1, cleanShare: 1, labels: 'dominant' }, temperature: 2, alpha: 0.5 },
  'half-clean-beta0.2-labelled-alpha0.5-T2': { set: { mixingShape: 0.2, cleanShare: 0.5, labels: 'dominant' }, temperature: 2, alpha: 0.5 },
  'mixup-beta0.2-labelled-alpha0.5-T2': { set: { mixingShape: 0.2, cleanShare: 0, labels: 'dominant' }, temperature: 2, alpha: 0.5 },
};

/** The current best recipe's runs in distill-sweep.json, quoted side by side. */
const SWEEP_REFERENCES = ['kept-channels-w1', 'kept-channels-w1@seed1', 'kept-channels-w1@seed2'];

const COPIES = 3;
const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const SEED = Number(benchOption('--seed') ?? 0);
const QUICK = process.argv.includes('--quick');
const target = { device: 'cpu' as const, threads: 1 };
const resultsFile = join(here, 'results', 'distill-mixup.json');
const sweepFile = join(here, 'results', 'distill-sweep.json');
/** bench:distill's results: its `kdNoLabels` run is the best recipe without labels (alpha 1, 3 epochs over clean images). */
const distillFile = join(here, 'results', 'distill.json');

/** A Gamma(shape, 1) draw: Marsaglia and Tsang (2000), boosted by U^(1/shape) below shape 1. */
function nextGamma(random: SeededRandom, shape: number): number {
  if (shape < 1) return nextGamma(random, shape + 1) * (1 - random.nextFloat()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = random.nextNormal();
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = 1 - random.nextFloat();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A Beta(shape, shape) draw as the share of one Gamma draw in the sum of two. */
function nextSymmetricBeta(random: SeededRandom, shape: number): number {
  const a = nextGamma(random, shape);
  const b = nextGamma(random, shape);
  return a + b > 0 ? a / (a + b) : 0.5;
}

interface MixedImages {
  /** With `labels` when the set asks for them. */
  readonly dataset: Dataset;
  /** The lam of every mixed sample (clean ones excluded), to report how mixed the set is. */
  readonly lambdas: Float64Array;
}

/**
 * `COPIES` copies of `images` ([N, ...] float32) one after another; in each, a random `cleanShare`
 * of the images stays as it is, every other image i becomes lam * x[i] + (1 - lam) * x[partner[i]]
 * with a fresh permutation as partners and lam ~ Beta(shape, shape) per sample.
 */
function mixedCopies(images: Float32Array, shape: readonly number[], labels: NpyArray | undefined, set: MixedSet, random: SeededRandom): MixedImages {
  const count = shape[0] as number;
  const size = images.length / count;
  const out = new Float32Array(COPIES * images.length);
  if (set.labels === 'dominant' && labels === undefined) {
    throw new DatasetError('A labelled mixed set needs the labels of the training images; load fmnist-train-10k with its y file.');
  }
  const outLabels = set.labels === 'dominant' ? new BigInt64Array(COPIES * count) : undefined;
  const labelOf = (i: number): bigint => BigInt((labels as NpyArray).data[i] as number | bigint);
  const lambdas: number[] = [];
  for (let copy = 0; copy < COPIES; copy++) {
    const partner = random.permutation(count);
    const cleanOrder = random.permutation(count);
    const clean = new Uint8Array(count);
    for (let k = 0; k < Math.round(set.cleanShare * count); k++) clean[cleanOrder[k] as number] = 1;
    for (let i = 0; i < count; i++) {
      const own = images.subarray(i * size, (i + 1) * size);
      const base = (copy * count + i) * size;
      if (clean[i] === 1) {
        out.set(own, base);
        if (outLabels !== undefined) outLabels[copy * count + i] = labelOf(i);
        continue;
      }
      const lam = nextSymmetricBeta(random, set.mixingShape);
      lambdas.push(lam);
      if (outLabels !== undefined) outLabels[copy * count + i] = labelOf(lam >= 0.5 ? i : (partner[i] as number));
      const other = images.subarray((partner[i] as number) * size, ((partner[i] as number) + 1) * size);
      for (let j = 0; j < size; j++) out[base + j] = lam * (own[j] as number) + (1 - lam) * (other[j] as number);
    }
  }
  const features = new Map([[DEFAULT_FEATURE, { dtype: 'float32' as const, shape: [COPIES * count, ...shape.slice(1)], data: out, file: undefined }]]);
  const mixedLabels = outLabels === undefined ? undefined : { dtype: 'int64' as const, shape: [COPIES * count], data: outLabels, file: undefined };
  return { dataset: new Dataset(features, mixedLabels), lambdas: Float64Array.from(lambdas) };
}

const only = (benchOption('--only') ?? '').split(',').filter((n) => n !== '');
const unknown = only.filter((n) => !(n in VARIANTS));
if (only.length === 0 || unknown.length > 0) {
  console.error(`Give --only with variant names among: ${Object.keys(VARIANTS).join(', ')}${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}.`);
  process.exit(1);
}
const trainingSplit = requireTrainingSplitFiles('The mixup distillation benchmark');

const teacher = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
const fullTrain = await loadDataset({ x: trainingSplit.x, y: trainingSplit.y });
const train = QUICK ? fullTrain.slice(0, 1000) : fullTrain;
const validation = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });
const calibration = await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy'), y: join(fixtures, 'fmnist-calib.y.npy') });
const inputs = teacher.graph.inputs.map((i) => i.name);
const originalAccuracy = await modelAccuracy(teacher, validation, target, { batch: 250 });

/** The student of every run: uniform L1 plan at 50% of every group, BatchNorm re-estimated on 512 fmnist-calib samples. */
async function prunedStudent(): Promise<{ readonly model: OnnxModel; readonly params: number; readonly accuracy: number }> {
  const pruner = new StructuredPruner(teacher);
  const perLayer = Object.fromEntries(pruner.prunableGroups().map((g) => [g.name, 0.5]));
  const result = pruner.prune({ criterion: 'l1', perLayer });
  await recalibrateBatchNorm(result.model, modelFeeds(calibration, inputs, 64, 512));
  return { model: result.model, params: result.report.actual.params, accuracy: await modelAccuracy(result.model, validation, target, { batch: 250 }) };
}

interface MixupFile {
  benchmark: 'distill-mixup';
  machine: { cpu: string; logicalCpus: number; platform: string };
  versions: { node: string; onnxruntimeNode: string };
  threads: number;
  budget: string;
  originalAccuracy: number;
  /** Final accuracies of the current best recipe, read from distill-sweep.json (not re-run here). */
  sweepReferences: Record<string, { finalAccuracy: unknown; finalAccuracyAfterBatchNormReestimation: unknown; date: unknown }>;
  /** bench:distill's run without labels (seed 0), read from distill.json. */
  unlabelledReference: { finalAccuracy: unknown; date: unknown } | null;
  runs: Record<string, unknown>;
}

const sweepRuns = existsSync(sweepFile) ? ((JSON.parse(readFileSync(sweepFile, 'utf8')) as { runs: Record<string, Record<string, unknown>> }).runs) : {};
const sweepReferences = Object.fromEntries(
  SWEEP_REFERENCES.filter((name) => name in sweepRuns).map((name) => {
    const run = sweepRuns[name] as Record<string, unknown>;
    return [name, { finalAccuracy: run.finalAccuracy, finalAccuracyAfterBatchNormReestimation: run.finalAccuracyAfterBatchNormReestimation, date: run.date }];
  }),
);
const distillResults = existsSync(distillFile) ? (JSON.parse(readFileSync(distillFile, 'utf8')) as { date?: unknown; runs?: Record<string, { finalAccuracy?: unknown }> }) : undefined;
const unlabelledRun = distillResults?.runs?.kdNoLabels;
const unlabelledReference = unlabelledRun === undefined ? null : { finalAccuracy: unlabelledRun.finalAccuracy ?? null, date: distillResults?.date ?? null };
const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const images = train.feature(DEFAULT_FEATURE);

for (const name of only) {
  const recipe = VARIANTS[name] as MixupRecipe;
  // One stream per run and seed, so a run's set does not depend on which runs came before it.
  const mixed = mixedCopies(images.data as Float32Array, images.shape, train.labels, recipe.set, new SeededRandom(SEED * 1000 + 7));
  const student = await prunedStudent();
  const result = await distill({
    teacher,
    student: student.model,
    train: mixed.dataset,
    validation,
    epochs: 1,
    seed: SEED,
    target,
    alpha: recipe.alpha ?? 1,
    temperature: recipe.temperature,
    features: 'pruned',
    featureWeight: 1,
    optimizer: { kind: 'adamw', weightDecay: 0 },
    learningRate: 5e-3,
    batchSize: 64,
    teacherCache: 'none',
  });
  const reestimated = result.model.clone();
  await recalibrateBatchNorm(reestimated, modelFeeds(train, inputs, 250, train.size));
  const accuracyAfterBatchNormReestimation = await modelAccuracy(reestimated, validation, target, { batch: 250 });
  const lambdas = [...mixed.lambdas].sort((a, b) => a - b);
  const quantile = (q: number): number | null => (lambdas.length === 0 ? null : +(lambdas[Math.floor(q * (lambdas.length - 1))] as number).toFixed(4));
  const run = {
    date: new Date().toISOString(),
    seed: SEED,
    recipe: { ...recipe, alpha: recipe.alpha ?? 1, features: 'pruned', featureWeight: 1, optimizer: 'adamw, no weight decay', learningRate: 5e-3, schedule: 'cosine', batchSize: 64 },
    samples: mixed.dataset.size,
    mixedSamples: lambdas.length,
    // lam is the weight of a sample's own image; min(lam, 1 - lam) says how far from clean it is.
    lambdaQuantiles: { p10: quantile(0.1), p50: quantile(0.5), p90: quantile(0.9) },
    updates: result.steps,
    pruned: { params: student.params, accuracyAfterBatchNormReestimation: student.accuracy },
    trainLoss: +(result.history.at(-1)?.trainLoss ?? Number.NaN).toFixed(5),
    finalAccuracy: result.history.at(-1)?.validationAccuracy ?? null,
    finalAccuracyAfterBatchNormReestimation: accuracyAfterBatchNormReestimation,
    trainingSeconds: +result.history.reduce((s, h) => s + h.seconds, 0).toFixed(2),
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  console.log(
    `${name}${QUICK ? ' (quick)' : ''}: ${run.samples} samples (${run.mixedSamples} mixed), ${run.updates} updates, ` +
      `${((run.finalAccuracy ?? 0) * 100).toFixed(2)}%, BatchNorm re-estimated on clean train: ${(accuracyAfterBatchNormReestimation * 100).toFixed(2)}% (${run.trainingSeconds} s)`,
  );
  if (QUICK) continue;
  const previous = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as MixupFile) : undefined;
  const file: MixupFile = {
    benchmark: 'distill-mixup',
    machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
    versions: { node: process.version, onnxruntimeNode: ortVersion },
    threads: target.threads,
    budget: `one epoch over ${COPIES} (mixed) copies of fmnist-train-10k = the samples and updates of ${COPIES} epochs over it; accuracy on fmnist-val-2k at the end`,
    originalAccuracy,
    sweepReferences,
    unlabelledReference,
    runs: { ...previous?.runs, [SEED === 0 ? name : `${name}@seed${SEED}`]: run },
  };
  await writeFileAtomic(resultsFile, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}
