/**
 * `npm run bench:prune [-- --models resnet8-fmnist --ratios 0.3,0.5,0.7 --round-to 8 --out <file.json>]`:
 * the structured pruning benchmark of issue #5 (`--models resnet8-fmnist --ratios 0.5 --out /tmp/p.json`
 * is a smoke run of the acceptance plan alone).
 *
 * For each fixture model and ratio: global L1 pruning (units ranked across all prunable groups,
 * kept channels rounded to multiples of 8 as the plugin and CLI do by default; resnet8 at 50% is
 * also measured at free widths, roundTo 1, at onnxruntime's AVX-512 NCHWc block, roundTo 16, and
 * in two block-aware per-layer variants, and at optimization level `extended` for both models as a
 * diagnostic),
 * then MACs and params against the original (predicted before building and counted after), the
 * batch-1 and batch-64 latency ratio against the original (1 intra-op thread, optimization `all`,
 * spinning off; both sessions open side by side and timed in alternating rounds so the noise of
 * the shared machine hits both; each round is the median of its runs, the figure the median over
 * rounds; the fastest round of each model is reported beside it, as quantizer-int8's
 * compareLatency does), and the top-1 accuracy on the evaluation split before and after BatchNorm
 * re-estimation on the calibration split (512 samples). For the acceptance plan also: the graph
 * onnxruntime runs for each model (op counts, and each NCHWc -> NCHW reorder with its channels and
 * readers), which says why the pruned model is not faster than its channel counts allow.
 *
 * Acceptance (issue #5): resnet8 at 50% (global L1): MACs <= 0.35x and batch-64 latency <= 0.5x.
 *
 * Writes bench/results/prune.json (or `--out`).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { createSession, loadDataset, measureLatency, modelAccuracy, type RuntimeSession } from '@open-autoglm/runtime';
import { modelFeeds, recalibrateBatchNorm, StructuredPruner } from '@open-autoglm/pruner-structured';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { benchOption, median } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const args = process.argv.slice(2);
const option = benchOption;

const SPECS = [
  { model: 'lenet5-fmnist', calib: 'fmnist-calib', val: 'fmnist-val-2k' },
  { model: 'resnet8-fmnist', calib: 'fmnist-calib', val: 'fmnist-val-2k' },
  { model: 'vgg11bn-mnist', calib: 'mnist-calib', val: 'mnist-test' },
  { model: 'tinybert-spam', calib: 'spam-calib', val: 'spam-val' },
] as const;
const models = (option('--models') ?? SPECS.map((s) => s.model).join(',')).split(',');
const ratios = (option('--ratios') ?? '0.3,0.5,0.7').split(',').map(Number);
const ROUND_TO = Number(option('--round-to') ?? '8');
const OUT = option('--out') ?? join(here, 'results', 'prune.json');
const CALIBRATION_SAMPLES = 512;
const EVAL_SAMPLES = 2000;
const LATENCY = {
  1: { rounds: 9, runs: 100 },
  64: { rounds: 11, runs: 15 },
} as const;
/** The acceptance plan's batch-64 figure gets more alternating rounds (the machine is shared). */
const ACCEPTANCE_ROUNDS = 25;
const PROFILE_RUNS = 40;

function round(x: number, digits = 4): number {
  return Number(x.toFixed(digits));
}

interface LatencyPair {
  /** Median over rounds of each round's p50. */
  readonly originalMs: number;
  readonly prunedMs: number;
  readonly ratio: number;
  /** Each model's fastest round (other processes only add time). */
  readonly fastestRound: { readonly originalMs: number; readonly prunedMs: number; readonly ratio: number };
}

/** p50 per round over alternating rounds of the original and the pruned session: median and fastest round. */
async function interleavedLatency(original: RuntimeSession, pruned: RuntimeSession, batch: 1 | 64, rounds: number = LATENCY[batch].rounds): Promise<LatencyPair> {
  const { runs } = LATENCY[batch];
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push((await measureLatency(original, { batch, runs, warmupRuns: 3 })).p50Ms);
    b.push((await measureLatency(pruned, { batch, runs, warmupRuns: 3 })).p50Ms);
  }
  const fastest = { originalMs: Math.min(...a), prunedMs: Math.min(...b) };
  return {
    originalMs: round(median(a)),
    prunedMs: round(median(b)),
    ratio: round(median(b) / median(a), 3),
    fastestRound: { originalMs: round(fastest.originalMs), prunedMs: round(fastest.prunedMs), ratio: round(fastest.prunedMs / fastest.originalMs, 3) },
  };
}

/**
 * onnxruntime's own per-kernel times at batch 64 (1 thread, level all, spinning off): for each
 * node of the optimized graph, its fastest of PROFILE_RUNS runs after 3 warm-up runs. Minima, as
 * other processes only add time: the breakdown of where a model's time goes on a loaded machine.
 */
async function kernelProfile(model: OnnxModel): Promise<{ kernels: Record<string, number>; sumMs: number }> {
  const folder = mkdtempSync(join(tmpdir(), 'prune-profile-'));
  try {
    const session = await InferenceSession.create(model.toBytes(), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      enableProfiling: true,
      profileFilePrefix: join(folder, 'profile'),
      extra: { session: { 'intra_op.allow_spinning': '0' } },
    });
    const [name] = session.inputNames;
    const x = new Tensor('float32', Float32Array.from({ length: 64 * 28 * 28 }, (_, i) => Math.sin(i)), [64, 1, 28, 28]);
    for (let i = 0; i < 3 + PROFILE_RUNS; i++) await session.run({ [name as string]: x });
    session.endProfiling();
    await session.release();
    const file = readdirSync(folder).find((f) => f.endsWith('.json'));
    const events = JSON.parse(readFileSync(join(folder, file as string), 'utf8')) as Array<{ cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }>;
    const warmEnd = events.filter((e) => e.name === 'model_run').map((e) => e.ts).sort((a, b) => a - b)[3] ?? 0;
    const fastest = new Map<string, number>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < warmEnd) continue;
      const key = `${e.args?.op_name ?? '?'} ${e.name.slice(0, -'_kernel_time'.length)}`;
      fastest.set(key, Math.min(fastest.get(key) ?? Infinity, e.dur / 1000));
    }
    const sorted = [...fastest].sort((a, b) => b[1] - a[1]);
    return { kernels: Object.fromEntries(sorted.map(([k, v]) => [k, round(v)])), sumMs: round(sorted.reduce((sum, [, v]) => sum + v, 0)) };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

interface OptimizedGraph {
  /** Nodes per op type (`domain:opType` outside the default domain). */
  readonly opCounts: Record<string, number>;
  /** Each ReorderOutput (NCHWc blocks back to plain NCHW): the tensor, its channels, the nodes reading it. */
  readonly reorders: Array<{ readonly tensor: string; readonly channels: number; readonly readBy: string[] }>;
}

/**
 * The graph onnxruntime really runs (level all, 1 thread), saved with `optimizedModelFilePath`.
 * Its ReorderOutput nodes are the layout conversions a model pays for on this CPU: a Conv reading
 * fewer channels than the NCHWc block takes plain NCHW input, so its producer's blocked output is
 * converted back.
 */
async function optimizedGraph(model: OnnxModel): Promise<OptimizedGraph> {
  const folder = mkdtempSync(join(tmpdir(), 'prune-optimized-'));
  try {
    const optimizedModelFilePath = join(folder, 'optimized.onnx');
    const session = await InferenceSession.create(model.toBytes(), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      optimizedModelFilePath,
      logSeverityLevel: 3,
    });
    await session.release();
    const graph = (await OnnxModel.load(optimizedModelFilePath)).graph;
    const opCounts: Record<string, number> = {};
    for (const node of graph.nodes) {
      const key = node.domain === '' ? node.opType : `${node.domain}:${node.opType}`;
      opCounts[key] = (opCounts[key] ?? 0) + 1;
    }
    const reorders = graph.nodes
      .filter((node) => node.opType === 'ReorderOutput')
      .map((node) => {
        const tensor = node.output[0] as string;
        const channels = Number(node.attribute.find((a) => a.name === 'channels')?.i ?? 0n);
        return { tensor, channels, readBy: graph.consumersOf(tensor).map((reader) => `${reader.opType} ${reader.name}`) };
      });
    return { opCounts, reorders };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const rows: unknown[] = [];
const results = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  threads: 1,
  method:
    `Global L1 pruning (units ranked across every prunable group, normalized by the group mean), kept channels rounded to multiples of ${ROUND_TO} ` +
    '(the plugin default), minimum 1 unit per group. ' +
    `Accuracy: top-1 on the first ${EVAL_SAMPLES} samples of the evaluation split, after pruning and after BatchNorm re-estimation on ` +
    `${CALIBRATION_SAMPLES} calibration samples (batches of 64; models without BatchNorm: n/a). Latency: 1 intra-op thread, ` +
    'optimization "all", spinning off, synthetic inputs; original and pruned sessions open side by side, timed in alternating rounds ' +
    `(batch 1: ${LATENCY[1].rounds} rounds x ${LATENCY[1].runs} runs; batch 64: ${LATENCY[64].rounds} rounds x ${LATENCY[64].runs} runs, ` +
    `${ACCEPTANCE_ROUNDS} rounds for the acceptance plan), ` +
    'each round the median of its runs, the figure the median over rounds (and, beside it, each model\'s fastest round). ' +
    'The machine is shared (see loadAverage): read ratios.',
  loadAverage: { atStart: loadavg().map((v) => round(v, 2)), atEnd: [] as number[] },
  models: rows,
  acceptance: {} as Record<string, unknown>,
  optimizationLevelExtended: undefined as unknown,
  kernelProfileBatch64: undefined as unknown,
  optimizedGraphs: undefined as unknown,
};

for (const spec of SPECS.filter((s) => models.includes(s.model))) {
  const model = await OnnxModel.load(join(fixtures, `${spec.model}.onnx`));
  const pruner = new StructuredPruner(model);
  const val = (await loadDataset({ x: join(fixtures, `${spec.val}.x.npy`), y: join(fixtures, `${spec.val}.y.npy`) })).slice(0, EVAL_SAMPLES);
  const calib = await loadDataset({ x: join(fixtures, `${spec.calib}.x.npy`) });
  const originalAccuracy = await modelAccuracy(model, val, { device: 'cpu', threads: 1 }, { batch: 250 });
  const originalSession = await createSession(model.toBytes(), { device: 'cpu', threads: 1 });
  const plans: Array<{ ratio: number; roundTo: number; perLayer?: Record<string, number>; variant?: string }> = ratios.map((ratio) => ({ ratio, roundTo: ROUND_TO }));
  if (spec.model === 'resnet8-fmnist' && ratios.includes(0.5)) {
    for (const variant of [1, 16]) if (variant !== ROUND_TO) plans.push({ ratio: 0.5, roundTo: variant });
    // Block-aware alternatives at multiples of 8: the stem/residual group kept at onnxruntime's
    // AVX-512 block of 16 channels (the rest ranked globally), and the same 112 channels kept with
    // stage 2 at 8 and stage 3 at 40 (channels removed at 14x14 instead of 7x7: fewer MACs).
    plans.push({ ratio: 0.5, roundTo: 8, perLayer: { '/conv1/Conv': 0 }, variant: 'stem/residual group kept at 16 channels' });
    plans.push({
      ratio: 0.5,
      roundTo: 8,
      perLayer: { '/conv1/Conv': 0.5, '/layer1/conv1/Conv': 0.5, '/layer2/conv1/Conv': 0.75, '/layer2/conv2/Conv': 0.75, '/layer3/conv1/Conv': 0.375, '/layer3/conv2/Conv': 0.375 },
      variant: 'same channel count, stage 2 at 8 and stage 3 at 40',
    });
  }
  for (const { ratio, roundTo, perLayer, variant } of plans) {
    const options = { ratio, roundTo, ...(perLayer === undefined ? {} : { perLayer }) };
    const predicted = pruner.predict(options);
    const { model: pruned, report } = pruner.prune(options);
    const accuracyPruned = await modelAccuracy(pruned, val, { device: 'cpu', threads: 1 }, { batch: 250 });
    const inputNames = pruned.graph.inputs.map((i) => i.name);
    const recalibration = await recalibrateBatchNorm(pruned, modelFeeds(calib, inputNames, 64, CALIBRATION_SAMPLES));
    const accuracyRecalibrated = recalibration.layers.length > 0 ? await modelAccuracy(pruned, val, { device: 'cpu', threads: 1 }, { batch: 250 }) : null;
    const prunedSession = await createSession(pruned.toBytes(), { device: 'cpu', threads: 1 });
    const b1 = await interleavedLatency(originalSession, prunedSession, 1);
    const isAcceptancePlan = spec.model === 'resnet8-fmnist' && ratio === 0.5 && roundTo === ROUND_TO && perLayer === undefined;
    const b64 = await interleavedLatency(originalSession, prunedSession, 64, isAcceptancePlan ? ACCEPTANCE_ROUNDS : LATENCY[64].rounds);
    const row = {
      model: spec.model,
      ratio,
      roundTo,
      ...(variant === undefined ? {} : { variant, perLayer }),
      units: Object.fromEntries(report.groups.filter((g) => !g.frozen).map((g) => [g.group, `${g.unitsBefore} -> ${g.unitsAfter}`])),
      frozenGroups: report.groups.filter((g) => g.frozen).map((g) => ({ group: g.group, reasons: g.reasons })),
      params: { original: report.original.params, predicted: predicted.params, actual: report.actual.params, ratio: round(report.actual.params / report.original.params) },
      macs: { original: report.original.macs, predicted: predicted.macs, actual: report.actual.macs, ratio: round(report.actual.macs / report.original.macs) },
      latencyBatch1: b1,
      latencyBatch64: b64,
      accuracy: { original: originalAccuracy, pruned: accuracyPruned, afterBatchNormRecalibration: accuracyRecalibrated },
    };
    rows.push(row);
    console.log(
      `${spec.model} ${ratio} (roundTo ${roundTo}${variant === undefined ? '' : `, ${variant}`}): MACs ${row.macs.ratio}x params ${row.params.ratio}x latency b1 ${b1.ratio}x (fastest ${b1.fastestRound.ratio}x) ` +
        `b64 ${b64.ratio}x (fastest ${b64.fastestRound.ratio}x) ` +
        `accuracy ${originalAccuracy} -> ${accuracyPruned} -> ${accuracyRecalibrated ?? 'n/a'}`,
    );
    if (isAcceptancePlan) {
      results.acceptance = {
        criterion: 'resnet8-fmnist at 50% global L1: MACs <= 0.35x and batch-64 latency <= 0.5x (1 thread)',
        macsRatio: row.macs.ratio,
        batch64LatencyRatio: b64.ratio,
        batch64LatencyRatioFastestRound: b64.fastestRound.ratio,
        met: row.macs.ratio <= 0.35 && b64.ratio <= 0.5,
        metOnFastestRounds: row.macs.ratio <= 0.35 && b64.fastestRound.ratio <= 0.5,
        accuracyAfterBatchNormRecalibration: accuracyRecalibrated,
      };
      // Diagnostic: without the NCHWc layout (level `extended`) both models run plain im2col
      // convolutions; the ratio there says how much of the gap is the 16-channel blocking.
      const [originalExtended, prunedExtended] = [
        await createSession(model.toBytes(), { device: 'cpu', threads: 1, optimizationLevel: 'extended' }),
        await createSession(pruned.toBytes(), { device: 'cpu', threads: 1, optimizationLevel: 'extended' }),
      ];
      results.optimizationLevelExtended = { model: spec.model, ratio, roundTo, latencyBatch64: await interleavedLatency(originalExtended, prunedExtended, 64) };
      await originalExtended.release();
      await prunedExtended.release();
      const [originalKernels, prunedKernels] = [await kernelProfile(model), await kernelProfile(pruned)];
      results.kernelProfileBatch64 = {
        model: spec.model,
        ratio,
        roundTo,
        method: `onnxruntime profiling, level all, 1 thread, batch 64: each kernel's fastest of ${PROFILE_RUNS} runs (after 3 warm-up runs), in ms`,
        sumRatio: round(prunedKernels.sumMs / originalKernels.sumMs, 3),
        original: originalKernels,
        pruned: prunedKernels,
      };
      results.optimizedGraphs = {
        model: spec.model,
        ratio,
        roundTo,
        method: 'the graph onnxruntime runs (level all, 1 thread), saved with optimizedModelFilePath: nodes per op type, and each ReorderOutput (NCHWc -> NCHW) with the nodes reading its output',
        original: await optimizedGraph(model),
        pruned: await optimizedGraph(pruned),
      };
    }
    await prunedSession.release();
  }
  await originalSession.release();
}

results.loadAverage.atEnd = loadavg().map((v) => round(v, 2));
mkdirSync(dirname(OUT), { recursive: true });
await writeFileAtomic(OUT, new TextEncoder().encode(`${JSON.stringify(results, null, 2)}\n`));
console.log(`wrote ${OUT}${'met' in results.acceptance ? ` (acceptance met: ${String(results.acceptance.met)})` : ''}`);
