/**
 * `npm run bench:e2e [-- --search search-rl] [-- --trials N] [-- --train-10k]`: the end-to-end
 * benchmark of issue #10.
 *
 * Runs `autoglm compress` (the built CLI, as a user would) on examples/compress-resnet8's config
 * (resnet8-fmnist, prune -> distill -> INT8, Bayesian search), timing the whole run, then measures
 * the written files with `autoglm bench` and `autoglm eval`, never taking figures from the report:
 * latency of the input and of best.onnx at batch 64 and batch 1 on 1 thread (A/B interleaved over
 * several rounds, the median of the rounds' p50s, so machine noise hits both), file sizes, and
 * top-1 accuracy on fmnist-val-2k. Also the runtime's batch-1 per-call floor (an Identity model
 * with the same input), which small models approach at batch 1. The latency ratio is given from
 * the medians of the rounds and from each file's fastest round (other processes only add time),
 * with the machine's load average, and next to the figures of the result file it replaces.
 *
 * `--train-10k` distills on fmnist-train-10k (read from fixtures/ or ../shared/fixtures/; not in
 * the repository) instead of the example's 1000 calibration images, for one epoch instead of two.
 *
 * `--resume <scratch folder>` continues a stopped run (kill, crash) in that folder with
 * `autoglm compress --resume`; `minutes` then covers the resumed part only.
 *
 * Writes bench/results/e2e.json (or e2e-<variant>.json for variants).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '@open-autoglm/onnx';
import { identityModelFor, measureLatency } from '@open-autoglm/runtime';
import { benchOption, median, trainingSplitFiles } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const binary = join(repo, 'apps/cli/bin/autoglm.js');
const exampleConfig = join(repo, 'examples/compress-resnet8/autoglm.yaml');
const args = process.argv.slice(2);
const option = benchOption;
const search = option('--search');
const trials = option('--trials');
const train10k = args.includes('--train-10k');
// A scratch folder of an earlier bench run that was stopped: its config and study, continued with `autoglm compress --resume`.
const resumeDir = option('--resume');
const ROUNDS = 5;
const RUNS = { 64: 30, 1: 300 } as const;

async function autoglm(...argv: string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [binary, ...argv], { maxBuffer: 64 * 1024 * 1024 });
}

// The example's config, with absolute paths, the output in a scratch folder, and the variant's changes.
const work = resumeDir ?? mkdtempSync(join(tmpdir(), 'autoglm-bench-e2e-'));
const document = parseDocument(readFileSync(resumeDir === undefined ? exampleConfig : join(resumeDir, 'autoglm.yaml'), 'utf8'));
const exampleDir = dirname(exampleConfig);
const absolute = (relative: unknown): string => (resumeDir === undefined ? join(exampleDir, String(relative)) : String(relative));
document.setIn(['model'], absolute(document.getIn(['model'])));
for (const split of ['train', 'calib', 'val']) {
  for (const key of ['x', 'y']) {
    const value = document.getIn(['data', split, key]);
    if (value !== undefined) document.setIn(['data', split, key], absolute(value));
  }
}
if (train10k && resumeDir === undefined) {
  const files = trainingSplitFiles();
  if (files === undefined) {
    console.error('fmnist-train-10k is in neither fixtures/ nor ../shared/fixtures/; run without --train-10k.');
    process.exit(1);
  }
  document.setIn(['data', 'train', 'x'], files.x);
  document.setIn(['data', 'train', 'y'], files.y);
  // Ten times the example's data: one epoch (157 updates) instead of the example's two over 1000 images.
  const passes = document.getIn(['passes']) as { items: Array<{ get(key: string): unknown }> };
  const distiller = passes.items.findIndex((item) => item.get('use') === 'distiller-kd');
  if (distiller >= 0) document.setIn(['passes', distiller, 'with', 'epochs'], 1);
}
if (search !== undefined && resumeDir === undefined) {
  const trialBudget = document.getIn(['search', 'with', 'trials']);
  document.setIn(['search'], document.createNode({ use: search, with: { trials: trialBudget, seed: 0 } }));
}
const output = join(work, 'out');
document.setIn(['output'], output);
const config = join(work, 'autoglm.yaml');
if (resumeDir === undefined) writeFileSync(config, document.toString());

const loadBefore = loadavg();
console.log(`compressing with ${config} ...`);
const started = performance.now();
const compress = await autoglm('compress', config, '--json', ...(trials === undefined ? [] : ['--trials', trials]), ...(resumeDir === undefined ? [] : ['--resume']));
const compressMinutes = (performance.now() - started) / 60_000;
const report = JSON.parse(compress.stdout) as {
  bestModel: string | null;
  trials: Array<{ number: number; state: string; feasible: boolean }>;
  best?: { number: number; params: Record<string, unknown> };
  search: { stoppedBecause: string; cacheHits: number; cacheMisses: number };
  callFloorMs: number;
};
const input = String(document.getIn(['model']));
const best = report.bestModel;
const valX = String(document.getIn(['data', 'val', 'x']));
const valY = String(document.getIn(['data', 'val', 'y']));

interface Measured {
  readonly p50Ms: Record<'64' | '1', number>;
  readonly sizeBytes: number;
  readonly accuracy: number;
}

async function accuracyOf(model: string): Promise<number> {
  const { stdout } = await autoglm('eval', model, '--data', valX, '--labels', valY, '--threads', '1', '--json');
  return (JSON.parse(stdout) as { accuracy: number }).accuracy;
}

async function p50(model: string, batch: 64 | 1): Promise<number> {
  const { stdout } = await autoglm('bench', model, '--batch', String(batch), '--threads', '1', '--runs', String(RUNS[batch]), '--json');
  return (JSON.parse(stdout) as { p50Ms: number }).p50Ms;
}

let measured: { input: Measured; best: Measured; rounds: Record<'64' | '1', { input: number[]; best: number[] }> } | undefined;
if (best !== null) {
  const rounds: Record<'64' | '1', { input: number[]; best: number[] }> = { '64': { input: [], best: [] }, '1': { input: [], best: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const batch of [64, 1] as const) {
      // A then B, then B then A on the next round: drift on the shared machine hits both.
      const order = round % 2 === 0 ? (['input', 'best'] as const) : (['best', 'input'] as const);
      for (const which of order) rounds[batch][which].push(await p50(which === 'input' ? input : best, batch));
    }
  }
  const summarize = async (which: 'input' | 'best', file: string): Promise<Measured> => ({
    p50Ms: { '64': median(rounds['64'][which]), '1': median(rounds['1'][which]) },
    sizeBytes: statSync(file).size,
    accuracy: await accuracyOf(file),
  });
  measured = { input: await summarize('input', input), best: await summarize('best', best), rounds };
}

const floor = await measureLatency(identityModelFor({ path: input, bytes: new Uint8Array(readFileSync(input)) }), { batch: 1, runs: 2000, warmupRuns: 50, target: { device: 'cpu', threads: 1 } });
const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const ratio = (a: number, b: number): number => Number((a / b).toFixed(3));
const results = {
  benchmark: 'e2e',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}`, loadAverage: { before: loadBefore, after: loadavg() } },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  threads: 1,
  config: { file: 'examples/compress-resnet8/autoglm.yaml', search: search ?? 'as in the example', trainData: train10k ? 'fmnist-train-10k' : 'as in the example', trials: trials ?? 'as in the example' },
  run: {
    resumed: resumeDir !== undefined,
    minutes: Number(compressMinutes.toFixed(2)),
    trials: report.trials.length,
    complete: report.trials.filter((t) => t.state === 'complete').length,
    feasible: report.trials.filter((t) => t.feasible).length,
    stoppedBecause: report.search.stoppedBecause,
    passCache: { hits: report.search.cacheHits, misses: report.search.cacheMisses },
    bestTrial: report.best?.number ?? null,
    bestParams: report.best?.params ?? null,
  },
  measuredOnFiles:
    measured === undefined
      ? null
      : {
          input: measured.input,
          best: measured.best,
          latencyRatio: { batch64: ratio(measured.input.p50Ms['64'], measured.best.p50Ms['64']), batch1: ratio(measured.input.p50Ms['1'], measured.best.p50Ms['1']) },
          latencyRatioFastestRounds: {
            batch64: ratio(Math.min(...measured.rounds['64'].input), Math.min(...measured.rounds['64'].best)),
            batch1: ratio(Math.min(...measured.rounds['1'].input), Math.min(...measured.rounds['1'].best)),
          },
          sizeRatio: ratio(measured.input.sizeBytes, measured.best.sizeBytes),
          accuracyDropPoints: Number(((measured.input.accuracy - measured.best.accuracy) * 100).toFixed(2)),
          roundsP50Ms: measured.rounds,
        },
  batch1CallFloorMs: { p50: floor.p50Ms, min: floor.minMs },
  targets: { latencyRatioBatch64: 4.3, sizeRatio: 4, maxAccuracyDropPoints: 1, maxTrials: 40, maxMinutes: 30 },
};
mkdirSync(join(here, 'results'), { recursive: true });
const name = search === undefined && !train10k && trials === undefined ? 'e2e' : `e2e-${[search, train10k ? 'train10k' : undefined, trials === undefined ? undefined : `${trials}trials`].filter(Boolean).join('-')}`;
const resultFile = join(here, 'results', `${name}.json`);
// The figures this run replaces, side by side with the new ones.
const replaced = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as Partial<typeof results>) : undefined;
const previous =
  replaced?.measuredOnFiles == null
    ? null
    : {
        date: replaced.date,
        bestParams: replaced.run?.bestParams ?? null,
        latencyRatio: replaced.measuredOnFiles.latencyRatio,
        latencyRatioFastestRounds: replaced.measuredOnFiles.latencyRatioFastestRounds ?? null,
        sizeRatio: replaced.measuredOnFiles.sizeRatio,
        accuracyDropPoints: replaced.measuredOnFiles.accuracyDropPoints,
      };
await writeFileAtomic(resultFile, new TextEncoder().encode(`${JSON.stringify({ ...results, previous }, null, 2)}\n`));
console.log(JSON.stringify({ run: results.run, measuredOnFiles: results.measuredOnFiles && { ...results.measuredOnFiles, roundsP50Ms: undefined }, batch1CallFloorMs: results.batch1CallFloorMs, previous }, null, 2));
console.log(`wrote bench/results/${name}.json (run folder ${work})`);
