/**
 * npm run bench:quant — INT8 quantization on the fixture models, measured side by side.
 *
 * For each fixture: fp32 vs INT8 top-1 accuracy on its evaluation split, and latency at batch 1
 * and 64 with 1 onnxruntime thread (where the default kept a one-input-channel Conv float, the
 * model with every layer INT8 is measured against fp32 as well) (both sessions open, alternating rounds so that load from
 * other processes hits both; each model's fastest round, a round being the median of its runs). lenet5, resnet8 and vgg11bn are
 * quantized statically (QDQ, MinMax calibration on their *-calib split, per-channel weights,
 * uint8 activations); tinybert-spam dynamically. lenet5 and resnet8 also run the automatic
 * mixed-precision mode (max drop 0.005, latency decided at batch 1). Calibration methods are compared on resnet8. Peak memory of
 * calibrating resnet8 over 1,000 vs 10,000 samples is measured in child processes
 * (fmnist-train-10k from fixtures/ or ../shared/fixtures/; skipped when absent).
 *
 * Writes bench/results/quant.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { identityModelFor, loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import {
  autoMixedPrecision,
  CALIBRATION_METHODS,
  calibrateRanges,
  compareLatency,
  planStaticQuantization,
  prepareForQuantization,
  quantizeDynamic,
  quantizeStatic,
} from '@open-autoglm/quantizer-int8';
import { trainingSplitFiles } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixture = (name: string): string => join(repo, 'fixtures', name);

// Child mode: calibrate resnet8 on `count` samples of `file` and print the peak RSS.
if (process.argv[2] === '--calibration-memory') {
  const [file, countText, method] = process.argv.slice(3) as [string, string, string];
  const model = await OnnxModel.load(fixture('resnet8-fmnist.onnx'));
  const prepared = prepareForQuantization(model);
  const plan = planStaticQuantization(prepared);
  const data = (await loadDataset({ x: file })).slice(0, Number(countText));
  const baseline = process.resourceUsage().maxRSS;
  const started = performance.now();
  await calibrateRanges(prepared, plan.tensors, data, { method: method as 'minmax' });
  process.stdout.write(
    JSON.stringify({
      samples: data.size,
      method,
      seconds: (performance.now() - started) / 1000,
      datasetMb: (data.features.get('x')?.data.byteLength ?? 0) / 2 ** 20,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      peakRssBeforeCalibrationMb: baseline / 1024,
    }),
  );
  process.exit(0);
}

async function latency(fp32: OnnxModel, int8: OnnxModel): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  // The per-call floor (an Identity model on the same input: onnxruntime-node's wrapping,
  // output copy and promise hop) is paid by both models alike; the ratio without it shows
  // what the kernels gained.
  const identity = identityModelFor({ path: 'identity.onnx', bytes: fp32.toBytes() });
  for (const batch of [1, 64]) {
    const r = await compareLatency(fp32.toBytes(), int8.toBytes(), { batch, rounds: batch === 1 ? 9 : 7, roundMs: batch === 1 ? 60 : 250 });
    const floorMs = (await compareLatency(identity, identity, { batch, rounds: 3, roundMs: 30 })).aMs;
    const kernelSpeedup = (r.aMs - floorMs) / (r.bMs - floorMs);
    out[`batch${batch}`] = { fp32Ms: round(r.aMs), int8Ms: round(r.bMs), speedup: round(r.speedup, 3), callFloorMs: round(floorMs), speedupAboveCallFloor: round(kernelSpeedup, 3) };
    console.log(`  batch ${batch}: fp32 ${r.aMs.toFixed(4)} ms, int8 ${r.bMs.toFixed(4)} ms, ${r.speedup.toFixed(2)}x (call floor ${floorMs.toFixed(4)} ms; ${kernelSpeedup.toFixed(2)}x above it)`);
  }
  return out;
}

function round(x: number, digits = 4): number {
  return Number(x.toFixed(digits));
}

const fixturesSpec = [
  { model: 'lenet5-fmnist', calib: 'fmnist-calib', val: 'fmnist-val-2k', mode: 'static' },
  { model: 'resnet8-fmnist', calib: 'fmnist-calib', val: 'fmnist-val-2k', mode: 'static' },
  { model: 'vgg11bn-mnist', calib: 'mnist-calib', val: 'mnist-test', mode: 'static' },
  { model: 'tinybert-spam', calib: 'spam-calib', val: 'spam-val', mode: 'dynamic' },
] as const;

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const results: Record<string, unknown> = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  threads: 1,
  method:
    'static: QDQ, MinMax calibration on the *-calib split (all samples), per-channel int8 weights, uint8 activations, a ' +
    'one-input-channel Conv kept float unless pooled (default; everyLayerInt8 without that rule); dynamic: ' +
    'int8 weights of MatMul/Gemm, activations quantized at run time. Accuracy on the whole evaluation split. Latency: 1 intra-op ' +
    'thread, optimization "all", spinning off, synthetic inputs; fp32 and int8 sessions open side by side, 9 (batch 1) or 7 ' +
    '(batch 64) alternating rounds, each the median of its runs; the figure is the fastest round (other processes only add time). The machine is shared: read ratios.',
  models: [] as unknown[],
};

for (const spec of fixturesSpec) {
  console.log(`${spec.model} (${spec.mode})`);
  const model = await OnnxModel.load(fixture(`${spec.model}.onnx`));
  const validation = await loadDataset({ x: fixture(`${spec.val}.x.npy`), y: fixture(`${spec.val}.y.npy`) });
  const started = performance.now();
  const result = spec.mode === 'dynamic' ? quantizeDynamic(model) : await quantizeStatic(model, await loadDataset({ x: fixture(`${spec.calib}.x.npy`) }));
  const quantized = result.model;
  const seconds = (performance.now() - started) / 1000;
  const fp32Accuracy = await modelAccuracy(model, validation);
  const int8Accuracy = await modelAccuracy(quantized, validation);
  console.log(`  accuracy fp32 ${(fp32Accuracy * 100).toFixed(2)} %, int8 ${(int8Accuracy * 100).toFixed(2)} % (quantized in ${seconds.toFixed(1)} s)`);
  const entry: Record<string, unknown> = {
    model: spec.model,
    mode: spec.mode,
    evaluation: spec.val,
    quantizeSeconds: round(seconds, 2),
    accuracy: { fp32: fp32Accuracy, int8: int8Accuracy, dropPoints: round((fp32Accuracy - int8Accuracy) * 100, 2) },
    latency: await latency(model, quantized),
  };
  if (spec.mode === 'static' && result.floatNodes.length > 0) {
    // The default keeps a one-input-channel Conv float; the same model with it in INT8, for comparison.
    const allInt8 = (await quantizeStatic(model, await loadDataset({ x: fixture(`${spec.calib}.x.npy`) }), { floatSingleChannelConv: false })).model;
    const allInt8Accuracy = await modelAccuracy(allInt8, validation);
    console.log(`  every layer INT8 (floatSingleChannelConv: false): accuracy ${(allInt8Accuracy * 100).toFixed(2)} %`);
    entry.everyLayerInt8 = { accuracy: allInt8Accuracy, latency: await latency(model, allInt8) };
  }
  if (spec.model === 'lenet5-fmnist' || spec.model === 'resnet8-fmnist') {
    const auto = await autoMixedPrecision(model, await loadDataset({ x: fixture(`${spec.calib}.x.npy`) }), validation, { maxDrop: 0.005 });
    console.log(`  auto: ${auto.summary}`);
    entry.auto = {
      summary: auto.summary,
      accuracy: auto.chosen.accuracy,
      layers: auto.layers.map((l) => ({ node: l.node, precision: l.precision, reason: l.reason, layerSpeedup: l.layerSpeedup ?? null })),
      latency: await latency(model, auto.model),
    };
  }
  if (spec.model === 'resnet8-fmnist') {
    const calibration = await loadDataset({ x: fixture(`${spec.calib}.x.npy`) });
    const methods: Record<string, unknown> = {};
    for (const method of CALIBRATION_METHODS) {
      const result = await quantizeStatic(model, calibration, { method });
      methods[method] = { accuracy: await modelAccuracy(result.model, validation) };
      console.log(`  ${method}: ${((methods[method] as { accuracy: number }).accuracy * 100).toFixed(2)} %`);
    }
    entry.calibrationMethods = methods;
  }
  (results.models as unknown[]).push(entry);
}

const train10k = trainingSplitFiles()?.x;
if (train10k === undefined) {
  results.calibrationMemory = { skipped: 'fmnist-train-10k.x.npy is neither in fixtures/ nor in ../shared/fixtures/' };
} else {
  const runs: unknown[] = [];
  for (const method of ['minmax', 'entropy']) {
    for (const count of [1000, 10000]) {
      const output = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--calibration-memory', train10k, String(count), method], {
        encoding: 'utf8',
      });
      const run = JSON.parse(output) as { peakRssMb: number; datasetMb: number };
      console.log(`calibration memory (${method}, ${count} samples): peak RSS ${run.peakRssMb.toFixed(1)} MB (dataset ${run.datasetMb.toFixed(1)} MB)`);
      runs.push(run);
    }
  }
  results.calibrationMemory = {
    note: 'resnet8, every planned activation, batch 32, one child process per run; the peak includes the dataset itself (read whole into memory)',
    runs,
  };
}

mkdirSync(join(here, 'results'), { recursive: true });
await writeFileAtomic(join(here, 'results', 'quant.json'), new TextEncoder().encode(`${JSON.stringify(results, null, 2)}\n`));
console.log(`wrote ${join('bench', 'results', 'quant.json')}`);
