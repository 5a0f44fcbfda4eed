/**
 * npm run bench:channels — which channel counts onnxruntime's CPU convolutions run fast.
 *
 * Stacks of 3x3 convolutions (stride 1, same padding, C -> C channels, each followed by ReLU) per
 * channel count C and resolution (resnet8's 28x28, 14x14 and 7x7 stages), in fp32 and in static
 * QDQ INT8 (the repository's quantizer: MinMax calibration on random inputs, per-channel int8
 * weights, uint8 activations; onnxruntime runs QuantizeLinear -> QLinearConv... -> DequantizeLinear).
 * Batch 64, 1 thread. A layer's cost is the 5-layer stack's time over 5, so that the stack's ends
 * (the session call, the INT8 model's input quantization and output dequantization, which grow
 * with C too and do not recur per layer inside a real model) weigh a fifth. `marginalMs`, (t(5
 * layers) - t(1 layer)) / 4, removes them entirely, but as a difference of two measurements it
 * only holds on a quiet machine (under heavy load it even comes out negative).
 *
 * Per resolution every session stays open and rounds cycle through all of them, so load from
 * other processes spreads over every entry alike; a round's figure is the median of its runs.
 * Reported per layer: `fastestMs` (the stack's fastest round / 5) and `medianMs` (the median
 * round / 5), and the counts that are "slower than a wider layer" (some larger C runs in less
 * time, fastest rounds): a pruner should never stop at those, since keeping more channels costs
 * nothing there.
 *
 * Options: --quick (counts 8, 16, 24, 32, 48, 64; 3 rounds), --rounds N (default 5), --round-ms
 * N (time per stack and round, default 100), --batch N (default 64). Counts 4, 8, ..., 64 otherwise.
 * Writes bench/results/channels.json (channels-quick.json with --quick).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRandom } from '@open-autoglm/core';
import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { quantizeStatic } from '@open-autoglm/quantizer-int8';
import { createSession, Dataset, measureLatency, type RuntimeSession } from '@open-autoglm/runtime';
import { benchOption, median } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const quick = process.argv.includes('--quick');
const rounds = Number(benchOption('--rounds') ?? (quick ? 3 : 5));
const roundMs = Number(benchOption('--round-ms') ?? (quick ? 60 : 100));
const batch = Number(benchOption('--batch') ?? 64);
const resolutions = [28, 14, 7] as const;
const counts = quick ? [8, 16, 24, 32, 48, 64] : Array.from({ length: 16 }, (_, i) => 4 * (i + 1));
const target = { device: 'cpu', threads: 1 } as const;

const DEPTHS = [1, 5] as const;
type Depth = (typeof DEPTHS)[number];

/** `depth` x (Conv 3x3 (C -> C, stride 1, pads 1) + ReLU) on [batch, C, size, size], He-normal weights. */
function convStack(channels: number, size: number, depth: number, random: SeededRandom): OnnxModel {
  const fanIn = channels * 9;
  const scale = Math.sqrt(2 / fanIn);
  const node = [];
  const initializer = [];
  let x = 'input';
  for (let layer = 0; layer < depth; layer++) {
    const weight = Float32Array.from({ length: channels * fanIn }, () => random.nextNormal() * scale);
    const bias = Float32Array.from({ length: channels }, () => random.nextNormal() * 0.1);
    initializer.push(arrayToTensor(`weight${layer}`, weight, [channels, channels, 3, 3]), arrayToTensor(`bias${layer}`, bias, [channels]));
    const y = layer === depth - 1 ? 'output' : `relu${layer}`;
    node.push(
      makeNode('Conv', [x, `weight${layer}`, `bias${layer}`], [`conv${layer}`], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }),
      makeNode('Relu', [`conv${layer}`], [y]),
    );
    x = y;
  }
  const proto = makeModel(
    {
      name: `conv3x3x${depth}-c${channels}-${size}x${size}`,
      node,
      initializer,
      input: [makeTensorValueInfo('input', DataType.FLOAT, ['batch', channels, size, size])],
      output: [makeTensorValueInfo('output', DataType.FLOAT, ['batch', channels, size, size])],
    },
    { opset: 17, producerName: 'open-autoglm bench' },
  );
  return new OnnxModel(proto, { source: `bench/channelLatency.ts ${depth} x conv3x3 C=${channels} ${size}x${size}` });
}

async function int8Layer(model: OnnxModel, channels: number, size: number, random: SeededRandom): Promise<OnnxModel> {
  const samples = 64;
  const x = Float32Array.from({ length: samples * channels * size * size }, () => Math.max(0, random.nextNormal()));
  const calibration = new Dataset(new Map([['input', { dtype: 'float32', shape: [samples, channels, size, size], data: x, file: undefined }]]), undefined);
  return (await quantizeStatic(model, calibration, { method: 'minmax' })).model;
}

interface Entry {
  readonly channels: number;
  readonly form: 'fp32' | 'int8';
  readonly depth: Depth;
  readonly session: RuntimeSession;
  readonly runs: number;
  readonly roundsMs: number[];
}

interface Row {
  readonly channels: number;
  readonly macsPerSample: number;
  readonly fp32: { fastestMs: number; medianMs: number; marginalMs: number };
  readonly int8: { fastestMs: number; medianMs: number; marginalMs: number };
  readonly int8Speedup: number;
}

const round = (x: number, digits = 4): number => Number(x.toFixed(digits));
const random = new SeededRandom(0);
const loadBefore = loadavg();
const started = performance.now();
const tables: Record<string, unknown> = {};
for (const size of resolutions) {
  const entries: Entry[] = [];
  try {
    for (const channels of counts) {
      for (const depth of DEPTHS) {
        const fp32 = convStack(channels, size, depth, random);
        const int8 = await int8Layer(fp32, channels, size, random);
        for (const [form, model] of [['fp32', fp32], ['int8', int8]] as const) {
          const session = await createSession(model.toBytes(), target);
          // A short probe sizes the stack's runs per round.
          const probe = Math.max((await measureLatency(session, { batch, runs: 3, warmupRuns: 2 })).p50Ms, 1e-3);
          entries.push({ channels, form, depth, session, runs: Math.max(3, Math.min(500, Math.round(roundMs / probe))), roundsMs: [] });
        }
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const entry of entries) entry.roundsMs.push((await measureLatency(entry.session, { batch, runs: entry.runs, warmupRuns: 1 })).p50Ms);
    }
  } finally {
    for (const entry of entries) await entry.session.release();
  }
  const figure = (channels: number, form: 'fp32' | 'int8'): { fastestMs: number; medianMs: number; marginalMs: number } => {
    const stack = (depth: Depth): Entry => entries.find((e) => e.channels === channels && e.form === form && e.depth === depth) as Entry;
    const [one, five] = [stack(1), stack(5)];
    return {
      fastestMs: round(Math.min(...five.roundsMs) / 5),
      medianMs: round(median(five.roundsMs) / 5),
      marginalMs: round((Math.min(...five.roundsMs) - Math.min(...one.roundsMs)) / 4),
    };
  };
  const rows: Row[] = counts.map((channels) => {
    const fp32 = figure(channels, 'fp32');
    const int8 = figure(channels, 'int8');
    return { channels, macsPerSample: channels * channels * 9 * size * size, fp32, int8, int8Speedup: round(fp32.fastestMs / int8.fastestMs, 3) };
  });
  // A count is dominated when a wider layer of the same form runs faster (fastest rounds).
  const dominated = (form: 'fp32' | 'int8'): Array<{ channels: number; fasterWider: number }> =>
    rows.flatMap((row, i) => {
      const wider = rows.slice(i + 1).filter((w) => w[form].fastestMs < row[form].fastestMs);
      const best = wider.sort((a, b) => a[form].fastestMs - b[form].fastestMs)[0];
      return best === undefined ? [] : [{ channels: row.channels, fasterWider: best.channels }];
    });
  tables[`${size}x${size}`] = { rows, slowerThanAWiderLayer: { fp32: dominated('fp32'), int8: dominated('int8') } };
  console.log(`${size}x${size} (batch ${batch}, ms: fastest round / median of ${rounds} rounds)`);
  console.log('     C       fp32 ms          int8 ms     int8 speed-up');
  for (const row of rows) {
    console.log(
      `  ${String(row.channels).padStart(4)}  ${row.fp32.fastestMs.toFixed(3).padStart(7)} / ${row.fp32.medianMs.toFixed(3).padStart(7)}  ` +
        `${row.int8.fastestMs.toFixed(3).padStart(7)} / ${row.int8.medianMs.toFixed(3).padStart(7)}  ${row.int8Speedup.toFixed(2)}x`,
    );
  }
  const listed = (form: 'fp32' | 'int8'): string => dominated(form).map((d) => `${d.channels} (${d.fasterWider} faster)`).join(', ') || 'none';
  console.log(`  slower than a wider layer: fp32 ${listed('fp32')}; int8 ${listed('int8')}`);
}

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
const results = {
  benchmark: 'channels',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}`, loadAverage: { before: loadBefore, after: loadavg() } },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  threads: 1,
  batch,
  method:
    'stacks of 1 and 5 x (Conv 3x3 (C -> C, stride 1, pads 1) + ReLU) per count and resolution, a layer being ' +
    't5 / 5 (marginalMs: (t5 - t1) / 4, the stack ends cancelled, reliable on a quiet machine only); int8 = quantizeStatic (MinMax on 64 random ' +
    'non-negative inputs, per-channel int8 weights, uint8 activations), run as QuantizeLinear -> QLinearConv -> DequantizeLinear. ' +
    `Optimization "all", spinning off, synthetic inputs. Per resolution all sessions open; ${rounds} rounds cycle through every ` +
    `stack (about ${roundMs} ms per stack and round; a round's figure is the median of its runs). fastestMs: from the fastest ` +
    'round (other processes only add time); medianMs: from the median round. slowerThanAWiderLayer: counts where a wider layer of ' +
    'the same form has a faster fastest round.',
  rounds,
  minutes: round((performance.now() - started) / 60000, 2),
  resolutions: tables,
};
await writeFileAtomic(join(here, 'results', quick ? 'channels-quick.json' : 'channels.json'), new TextEncoder().encode(`${JSON.stringify(results, null, 2)}\n`));
console.log(`wrote bench/results/${quick ? 'channels-quick.json' : 'channels.json'} (${results.minutes} min)`);
