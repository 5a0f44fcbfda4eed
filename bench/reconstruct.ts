/**
 * `npm run bench:reconstruct [-- --models resnet8-fmnist --ratios 0.5 --calib-samples 1000 --max-rows 20000 --out <file.json>]`:
 * training-free recovery after structured pruning, least-squares reconstruction of the layers that
 * read removed channels (`reconstructConsumers`) against BatchNorm re-estimation alone.
 *
 * For ResNet-8, LeNet-5 and VGG-11-BN (`--models`) at 30% and 50% (`--ratios`; global L1,
 * roundTo 8, as the CLI's default): top-1 accuracy on the evaluation split (2,000 samples) of the
 * pruned model as pruned, after BatchNorm re-estimation, after reconstruction, and after
 * reconstruction then BatchNorm re-estimation (both on the same 1,000 calibration samples), with
 * the per-layer relative output errors before and after the refit and the time reconstruction took. `--models resnet8-fmnist --ratios 0.5 --calib-samples 256
 * --max-rows 4000` is a smoke run.
 *
 * Writes bench/results/reconstruct.json (or `--out`).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { modelFeeds, recalibrateBatchNorm, reconstructConsumers, StructuredPruner } from '@open-autoglm/pruner-structured';
import { benchOption } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures');
const SPECS = {
  'lenet5-fmnist': { calib: 'fmnist-calib', val: 'fmnist-val-2k' },
  'resnet8-fmnist': { calib: 'fmnist-calib', val: 'fmnist-val-2k' },
  'vgg11bn-mnist': { calib: 'mnist-calib', val: 'mnist-test' },
} as const;
type Fixture = keyof typeof SPECS;
const models = (benchOption('--models') ?? 'resnet8-fmnist,lenet5-fmnist,vgg11bn-mnist').split(',') as Fixture[];
const ratios = (benchOption('--ratios') ?? '0.3,0.5').split(',').map(Number);
const calibSamples = Number(benchOption('--calib-samples') ?? '1000');
const maxRows = Number(benchOption('--max-rows') ?? '20000');
const OUT = benchOption('--out') ?? join(here, 'results', 'reconstruct.json');
const EVAL_SAMPLES = 2000;
const BATCH = 64;
const target = { device: 'cpu', threads: 1 } as const;

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));

const results: unknown[] = [];
for (const name of models) {
  const spec = SPECS[name];
  if (spec === undefined) throw new Error(`Unknown model "${name}"; choose among ${Object.keys(SPECS).join(', ')}.`);
  const original = await OnnxModel.load(join(fixtures, `${name}.onnx`));
  const val = (await loadDataset({ x: join(fixtures, `${spec.val}.x.npy`), y: join(fixtures, `${spec.val}.y.npy`) })).slice(0, EVAL_SAMPLES);
  const calib = await loadDataset({ x: join(fixtures, `${spec.calib}.x.npy`) });
  const inputNames = original.graph.inputs.map((i) => i.name);
  const feeds = Array.from(modelFeeds(calib, inputNames, BATCH, calibSamples));
  const originalAccuracy = await modelAccuracy(original, val, target, { batch: 250 });
  const pruner = new StructuredPruner(original);
  for (const ratio of ratios) {
    const { model: pruned, plan } = pruner.prune({ ratio, roundTo: 8 });
    const accuracyPruned = await modelAccuracy(pruned, val, target, { batch: 250 });
    const recalibrated = pruned.clone();
    await recalibrateBatchNorm(recalibrated, feeds);
    const accuracyRecalibrated = await modelAccuracy(recalibrated, val, target, { batch: 250 });
    const reconstructed = pruned.clone();
    const started = performance.now();
    const report = await reconstructConsumers(original, reconstructed, pruner.analysis, plan, feeds, { maxRows });
    const reconstructionSeconds = (performance.now() - started) / 1000;
    const accuracyReconstructed = await modelAccuracy(reconstructed, val, target, { batch: 250 });
    await recalibrateBatchNorm(reconstructed, feeds);
    const accuracyReconstructedRecalibrated = await modelAccuracy(reconstructed, val, target, { batch: 250 });
    const row = {
      model: name,
      ratio,
      accuracy: {
        original: round(originalAccuracy),
        pruned: round(accuracyPruned),
        batchNormOnly: round(accuracyRecalibrated),
        reconstructOnly: round(accuracyReconstructed),
        reconstructThenBatchNorm: round(accuracyReconstructedRecalibrated),
      },
      reconstructionSeconds: round(reconstructionSeconds, 2),
      layers: report.layers.map((l) => ({ ...l, errorBefore: round(l.errorBefore), errorAfter: round(l.errorAfter) })),
      skipped: report.skipped,
    };
    console.log(JSON.stringify({ model: name, ratio, accuracy: row.accuracy, seconds: row.reconstructionSeconds }));
    for (const l of row.layers) console.log(`  ${l.node} (${l.opType}, ${l.unknowns} unknowns, ${l.rows} rows): ${l.errorBefore} -> ${l.errorAfter}`);
    for (const s of report.skipped) console.log(`  skipped ${s.node}: ${s.reason}`);
    results.push(row);
  }
}
const document = {
  benchmark: 'reconstruct',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, loadAverage: loadavg().map((v) => round(v, 2)) },
  versions: { node: process.version, onnxruntimeNode: (JSON.parse(readFileSync(join(here, '..', 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version },
  threads: 1,
  settings: { calibrationSamples: calibSamples, maxRows, evaluationSamples: EVAL_SAMPLES, criterion: 'l1', roundTo: 8, ridge: 1e-6 },
  results,
};
await writeFileAtomic(OUT, new TextEncoder().encode(`${JSON.stringify(document, null, 2)}\n`));
console.log(`wrote ${OUT}`);
