/**
 * `npm run bench:reconstruct-distill [-- --only global-l1-reconstruct,global-l1-batchnorm --seed 0 --epochs 3]`:
 * does least-squares reconstruction after pruning (`reconstructConsumers`) give knowledge
 * distillation a better start than BatchNorm re-estimation? ResNet-8 pruned to 50% (global L1
 * ranking or every group at 50%, L1, roundTo 1 as in bench/distillSweep.ts), then recovered either
 * way on fmnist-calib (1,000 samples for reconstruction, 512 for BatchNorm re-estimation as in
 * the sweep), then distilled with the sweep's best recipe (`kept-channels-w1`: KD alpha 0.5, T 2,
 * matched kept-channel features with weight 1, AdamW without weight decay, lr 5e-3 cosine, batch
 * 64; the `-lr0.002` and `-warmup157` (one epoch of linear warm-up) variants start gentler) for 3 epochs over fmnist-train-10k, seed 0. Accuracy on fmnist-val-2k after recovery and
 * after every epoch. `--epochs 1 --only global-l1-reconstruct` is a smoke run.
 *
 * Writes bench/results/reconstruct-distill.json (runs added by name as they finish).
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distill } from '@open-autoglm/distiller-kd';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { modelFeeds, recalibrateBatchNorm, reconstructConsumers, StructuredPruner } from '@open-autoglm/pruner-structured';
import { loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { benchOption, requireTrainingSplitFiles } from './benchSupport.js';

interface Variant {
  readonly scope: 'global' | 'uniform';
  readonly recovery: 'reconstruct' | 'batchnorm';
  /** Default 5e-3, the sweep's; a start closer to the teacher may want a gentler one. */
  readonly learningRate?: number;
  /** Linear warm-up steps (default 0): small first updates leave the reconstructed start intact longer. */
  readonly warmupSteps?: number;
}
const VARIANTS: Record<string, Variant> = {
  'global-l1-reconstruct': { scope: 'global', recovery: 'reconstruct' },
  'global-l1-batchnorm': { scope: 'global', recovery: 'batchnorm' },
  'uniform-l1-reconstruct': { scope: 'uniform', recovery: 'reconstruct' },
  'uniform-l1-batchnorm': { scope: 'uniform', recovery: 'batchnorm' },
  'global-l1-reconstruct-lr0.002': { scope: 'global', recovery: 'reconstruct', learningRate: 2e-3 },
  'uniform-l1-reconstruct-lr0.002': { scope: 'uniform', recovery: 'reconstruct', learningRate: 2e-3 },
  'uniform-l1-reconstruct-warmup157': { scope: 'uniform', recovery: 'reconstruct', warmupSteps: 157 },
  'global-l1-reconstruct-warmup157': { scope: 'global', recovery: 'reconstruct', warmupSteps: 157 },
};

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const SEED = Number(benchOption('--seed') ?? 0);
const EPOCHS = Number(benchOption('--epochs') ?? 3);
const OUT = benchOption('--out') ?? join(here, 'results', 'reconstruct-distill.json');
const target = { device: 'cpu' as const, threads: 1 };
const only = (benchOption('--only') ?? 'global-l1-reconstruct,global-l1-batchnorm,uniform-l1-reconstruct,uniform-l1-batchnorm').split(',').filter((n) => n !== '');
const unknown = only.filter((n) => !(n in VARIANTS));
if (unknown.length > 0) {
  console.error(`Unknown variant(s) ${unknown.join(', ')}; choose among ${Object.keys(VARIANTS).join(', ')}.`);
  process.exit(1);
}
const trainingSplit = requireTrainingSplitFiles('bench:reconstruct-distill');

const teacher = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
const train = await loadDataset({ x: trainingSplit.x, y: trainingSplit.y });
const validation = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });
const calibration = await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy') });
const inputs = teacher.graph.inputs.map((i) => i.name);
const originalAccuracy = await modelAccuracy(teacher, validation, target, { batch: 250 });
const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;

for (const name of only) {
  const variant = VARIANTS[name] as Variant;
  const pruner = new StructuredPruner(teacher);
  const ratios = variant.scope === 'global' ? { ratio: 0.5 } : { perLayer: Object.fromEntries(pruner.prunableGroups().map((g) => [g.name, 0.5])) };
  const { model: student, plan, report } = pruner.prune({ criterion: 'l1', ...ratios });
  const started = performance.now();
  if (variant.recovery === 'reconstruct') {
    await reconstructConsumers(teacher, student, pruner.analysis, plan, Array.from(modelFeeds(calibration, inputs, 64, 1000)), { seed: SEED });
  } else {
    await recalibrateBatchNorm(student, modelFeeds(calibration, inputs, 64, 512));
  }
  const recoverySeconds = (performance.now() - started) / 1000;
  const recovered = await modelAccuracy(student, validation, target, { batch: 250 });
  const result = await distill({
    teacher,
    student,
    train,
    validation,
    epochs: EPOCHS,
    seed: SEED,
    target,
    alpha: 0.5,
    temperature: 2,
    features: 'pruned',
    featureWeight: 1,
    optimizer: { kind: 'adamw', weightDecay: 0 },
    learningRate: variant.learningRate ?? 5e-3,
    warmupSteps: variant.warmupSteps ?? 0,
    batchSize: 64,
  });
  const perEpoch = result.history.map((h) => h.validationAccuracy);
  const run = {
    date: new Date().toISOString(),
    loadAverage: loadavg().map((v) => +v.toFixed(2)),
    seed: SEED,
    epochs: EPOCHS,
    variant,
    params: report.actual.params,
    accuracyAfterRecovery: recovered,
    recoverySeconds: +recoverySeconds.toFixed(2),
    validationAccuracyPerEpoch: perEpoch,
    finalAccuracy: perEpoch.at(-1) ?? null,
    trainingSeconds: +result.history.reduce((s, h) => s + h.seconds, 0).toFixed(2),
  };
  console.log(`${name}: after recovery ${(recovered * 100).toFixed(2)}%, per epoch ${perEpoch.map((a) => ((a ?? 0) * 100).toFixed(2)).join(', ')} % (${run.trainingSeconds} s)`);
  const previous = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as { runs: Record<string, unknown> }) : undefined;
  const file = {
    benchmark: 'reconstruct-distill',
    machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
    versions: { node: process.version, onnxruntimeNode: ortVersion },
    threads: target.threads,
    recipe: 'KD alpha 0.5, T 2, features pruned (weight 1), AdamW wd 0, lr 5e-3 cosine, batch 64, over fmnist-train-10k; accuracy on fmnist-val-2k',
    originalAccuracy,
    runs: { ...previous?.runs, [EPOCHS === 3 && SEED === 0 ? name : `${name}@epochs${EPOCHS}-seed${SEED}`]: run },
  };
  await writeFileAtomic(OUT, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}
