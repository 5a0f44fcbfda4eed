/**
 * `npm run bench:gradients`: the two known slow spots of the training graphs (issue #3), each
 * formulation measured on the same machine in the same run.
 *
 * 1. Depthwise convolution (mobilenet-style: 32 channels, 3x3, pad 1, 56x56, batch 64):
 *    - weight gradient: the grouped-Conv formulation (X as [1, C*N, H, W], dY as the kernel,
 *      group C) against the one the Conv rule emits (a grouped Conv with a one-hot kernel unfolds
 *      X into its 9 taps, a batched MatMul contracts them with dY, ReduceSum over the batch);
 *    - input gradient: ConvTranspose against the flipped-kernel Conv the rule emits at stride 1.
 * 2. MaxPool backward: MaxPool with Indices + ScatterElements against the unfold formulation
 *    (input unfolded into window taps, first maximum marked with CumSum, grouped ConvTranspose).
 *    The rule uses the unfold formulation for non-overlapping windows (2x2/2) and Indices +
 *    ScatterElements for overlapping ones, where the 3x3/2 case shows no gain.
 *
 * Each formulation is a standalone graph of the same operators the rule adds (checked against the
 * other formulation: relative difference reported). Timings: lowest of 5 rounds of the median of
 * 10 runs (after 2 warm-up runs), rounds interleaved between formulations so that the load of a
 * shared machine hits both alike; 1 and 2 onnxruntime threads.
 *
 * 3. A whole training step built by buildTrainingStep with the shipped rules: two stacked
 *    depthwise 3x3 convolutions (32 channels, 56x56, batch 64, mse loss, SGD), next to the
 *    forward pass alone. No PyTorch is installed here, so there is no PyTorch figure to compare.
 *
 * Writes bench/results/gradients.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  arrayToTensor,
  buildTrainingStep,
  DataType,
  GraphProtoSchema,
  initialTrainingState,
  makeNode,
  makeTensorValueInfo,
  ModelProtoSchema,
  type NodeProto,
  OperatorSetIdProtoSchema,
  type TensorProto,
} from '@open-autoglm/onnx';
import * as ort from 'onnxruntime-node';

const here = dirname(fileURLToPath(import.meta.url));
const THREADS = [1, 2];
const ROUNDS = 5;
const RUNS = 10;

type Shape = (number | string)[];

function model(nodes: NodeProto[], inputs: [string, Shape][], outputs: string[], initializers: TensorProto[] = []): Uint8Array {
  const graph = create(GraphProtoSchema, {
    name: 'bench',
    node: nodes,
    initializer: initializers,
    input: inputs.map(([name, dims]) => makeTensorValueInfo(name, DataType.FLOAT, dims)),
    output: outputs.map((name) => makeTensorValueInfo(name, DataType.FLOAT)),
  });
  const opsetImport = [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })];
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, { irVersion: 8n, opsetImport, graph }));
}

const ints = (name: string, values: number[]): TensorProto => arrayToTensor(name, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);

function random(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** [C * taps, 1, k, k] one-hot kernel: filter c * taps + t picks tap t of channel c. */
function oneHot(channels: number, kernel: number): Float32Array {
  const taps = kernel * kernel;
  const values = new Float32Array(channels * taps * taps);
  for (let c = 0; c < channels; c++) for (let t = 0; t < taps; t++) values[(c * taps + t) * taps + t] = 1;
  return values;
}

async function session(bytes: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3 });
}

interface Formulation {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly output: string;
}

interface Comparison {
  readonly case: string;
  readonly threads: number;
  readonly ms: Record<string, number>;
  /** The first formulation's time over the second's. */
  readonly speedup: number;
  /** max |a - b| / max |a| between the two formulations' outputs. */
  readonly relativeDifference: number;
}

async function compare(label: string, formulations: readonly [Formulation, Formulation], feeds: Record<string, ort.Tensor>): Promise<Comparison[]> {
  const results: Comparison[] = [];
  for (const threads of THREADS) {
    const sessions = await Promise.all(formulations.map((f) => session(f.bytes, threads)));
    const best = [Infinity, Infinity];
    const outputs: Float32Array[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < 2; i++) {
        const s = sessions[i] as ort.InferenceSession;
        for (let w = 0; w < 2; w++) await s.run(feeds);
        const times: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          const start = performance.now();
          const out = await s.run(feeds);
          times.push(performance.now() - start);
          outputs[i] = out[(formulations[i] as Formulation).output]?.data as Float32Array;
        }
        times.sort((a, b) => a - b);
        best[i] = Math.min(best[i] as number, times[times.length >> 1] as number);
      }
    }
    await Promise.all(sessions.map((s) => s.release()));
    let difference = 0;
    let scale = 0;
    const [a, b] = outputs as [Float32Array, Float32Array];
    for (let i = 0; i < a.length; i++) {
      difference = Math.max(difference, Math.abs((a[i] as number) - (b[i] as number)));
      scale = Math.max(scale, Math.abs(a[i] as number));
    }
    const ms = Object.fromEntries(formulations.map((f, i) => [f.name, Number((best[i] as number).toFixed(2))]));
    const speedup = Number(((best[0] as number) / (best[1] as number)).toFixed(2));
    results.push({ case: label, threads, ms, speedup, relativeDifference: Number((difference / scale).toExponential(2)) });
    console.log(`${label}, ${threads} thread(s): ${formulations.map((f, i) => `${f.name} ${(best[i] as number).toFixed(2)} ms`).join(', ')} (x${speedup})`);
  }
  return results;
}

function depthwiseCases(): { weight: [Formulation, Formulation]; input: [Formulation, Formulation]; feeds: Record<string, ort.Tensor> } {
  const [n, c, h, k] = [64, 32, 56, 3];
  const inputs: [string, Shape][] = [['x', [n, c, h, h]], ['dy', [n, c, h, h]], ['w', [c, 1, k, k]]];
  const grouped = model(
    [
      makeNode('Transpose', ['x'], ['xt'], { perm: [1, 0, 2, 3] }),
      makeNode('Reshape', ['xt', 'as_groups'], ['xg']),
      makeNode('Transpose', ['dy'], ['kernel'], { perm: [1, 0, 2, 3] }),
      makeNode('Conv', ['xg', 'kernel'], ['g'], { group: c, pads: [1, 1, 1, 1] }),
      makeNode('Reshape', ['g', 'weight_shape'], ['dw']),
    ],
    inputs,
    ['dw'],
    [ints('as_groups', [1, c * n, h, h]), ints('weight_shape', [c, 1, k, k])],
  );
  const unfolded = model(
    [
      makeNode('Conv', ['x', 'one_hot'], ['u'], { group: c, pads: [1, 1, 1, 1] }),
      makeNode('Reshape', ['u', 'taps_shape'], ['taps']),
      makeNode('Reshape', ['dy', 'column_shape'], ['column']),
      makeNode('MatMul', ['taps', 'column'], ['per_sample']),
      makeNode('ReduceSum', ['per_sample', 'batch_axis'], ['summed'], { keepdims: 0 }),
      makeNode('Reshape', ['summed', 'weight_shape'], ['dw']),
    ],
    inputs,
    ['dw'],
    [
      arrayToTensor('one_hot', oneHot(c, k), [c * k * k, 1, k, k]),
      ints('taps_shape', [0, c, k * k, -1]),
      ints('column_shape', [0, c, -1, 1]),
      ints('batch_axis', [0]),
      ints('weight_shape', [c, 1, k, k]),
    ],
  );
  const transposed = model([makeNode('ConvTranspose', ['dy', 'w'], ['dx'], { group: c, pads: [1, 1, 1, 1] })], inputs, ['dx']);
  const flipped = model(
    [
      makeNode('Slice', ['w', 'starts', 'ends', 'axes', 'steps'], ['wf']),
      makeNode('Conv', ['dy', 'wf'], ['dx'], { group: c, pads: [1, 1, 1, 1] }),
    ],
    inputs,
    ['dx'],
    [ints('starts', [-1, -1]), ints('ends', [Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]), ints('axes', [2, 3]), ints('steps', [-1, -1])],
  );
  const feeds = {
    x: new ort.Tensor('float32', random(n * c * h * h, 3), [n, c, h, h]),
    dy: new ort.Tensor('float32', random(n * c * h * h, 5), [n, c, h, h]),
    w: new ort.Tensor('float32', random(c * k * k, 7), [c, 1, k, k]),
  };
  return {
    weight: [
      { name: 'groupedConv', bytes: grouped, output: 'dw' },
      { name: 'oneHotUnfoldMatMul', bytes: unfolded, output: 'dw' },
    ],
    input: [
      { name: 'convTranspose', bytes: transposed, output: 'dx' },
      { name: 'flippedConv', bytes: flipped, output: 'dx' },
    ],
    feeds,
  };
}

function maxPoolCase(n: number, c: number, h: number, k: number, s: number, p: number): { formulations: [Formulation, Formulation]; feeds: Record<string, ort.Tensor> } {
  const out = Math.floor((h + 2 * p - k) / s) + 1;
  const window = { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p] };
  const inputs: [string, Shape][] = [['x', [n, c, h, h]], ['dy', [n, c, out, out]]];
  const scatter = model(
    [
      makeNode('MaxPool', ['x'], ['y', 'indices'], window),
      makeNode('Shape', ['x'], ['shape']),
      makeNode('Size', ['x'], ['count']),
      makeNode('Reshape', ['count', 'one'], ['count1']),
      makeNode('ConstantOfShape', ['count1'], ['zeros']),
      makeNode('Reshape', ['indices', 'flat'], ['flat_indices']),
      makeNode('Reshape', ['dy', 'flat'], ['flat_dy']),
      makeNode('ScatterElements', ['zeros', 'flat_indices', 'flat_dy'], ['scattered'], { reduction: 'add' }),
      makeNode('Reshape', ['scattered', 'shape'], ['dx']),
    ],
    inputs,
    ['dx'],
    [ints('flat', [-1]), ints('one', [1])],
  );
  const taps = k * k;
  const full = s * (out - 1) + k;
  const overshoot = full - p - h;
  const padEnd = Math.max(p, full - h - p);
  const nodes: NodeProto[] = [makeNode('MaxPool', ['x'], ['y'], window)];
  const initializers: TensorProto[] = [
    arrayToTensor('one_hot', oneHot(c, k), [c * taps, 1, k, k]),
    ints('windows_shape', [0, c, taps, out, out]),
    ints('taps_shape', [0, c * taps, out, out]),
    ints('tap_axis', [2]),
    arrayToTensor('tap_axis_scalar', BigInt64Array.of(2n), []),
    arrayToTensor('zero', Float32Array.of(0), []),
    arrayToTensor('one_f', Float32Array.of(1), []),
  ];
  let source = 'x';
  if (p > 0 || padEnd > 0) {
    nodes.push(makeNode('Pad', ['x', 'pads', 'lowest'], ['padded']));
    initializers.push(ints('pads', [0, 0, p, p, 0, 0, padEnd, padEnd]), arrayToTensor('lowest', Float32Array.of(-3.4028234663852886e38), []));
    source = 'padded';
  }
  nodes.push(
    makeNode('Conv', [source, 'one_hot'], ['unfolded'], { group: c, strides: [s, s] }),
    makeNode('Reshape', ['unfolded', 'windows_shape'], ['windows']),
    makeNode('Unsqueeze', ['y', 'tap_axis'], ['y_taps']),
    makeNode('Equal', ['windows', 'y_taps'], ['is_max']),
    makeNode('Cast', ['is_max'], ['is_max_f'], { to: DataType.FLOAT }),
    makeNode('CumSum', ['is_max_f', 'tap_axis_scalar'], ['max_count']),
    makeNode('Equal', ['max_count', 'one_f'], ['first_count']),
    makeNode('And', ['is_max', 'first_count'], ['first']),
    makeNode('Unsqueeze', ['dy', 'tap_axis'], ['dy_taps']),
    makeNode('Where', ['first', 'dy_taps', 'zero'], ['routed']),
    makeNode('Reshape', ['routed', 'taps_shape'], ['per_tap']),
    makeNode('ConvTranspose', ['per_tap', 'one_hot'], ['dx'], {
      group: c,
      strides: [s, s],
      pads: [p, p, Math.max(0, overshoot), Math.max(0, overshoot)],
      output_padding: [Math.max(0, -overshoot), Math.max(0, -overshoot)],
    }),
  );
  const unfolded = model(nodes, inputs, ['dx'], initializers);
  // Ties on purpose (a third of the values repeat their neighbour, a fifth are zeros after a Relu).
  const x = random(n * c * h * h, 3);
  for (let i = 0; i + 1 < x.length; i += 3) x[i + 1] = x[i] as number;
  for (let i = 0; i < x.length; i += 5) x[i] = 0;
  return {
    formulations: [
      { name: 'indicesScatterElements', bytes: scatter, output: 'dx' },
      { name: 'oneHotUnfoldCumSumConvTranspose', bytes: unfolded, output: 'dx' },
    ],
    feeds: { x: new ort.Tensor('float32', x, [n, c, h, h]), dy: new ort.Tensor('float32', random(n * c * out * out, 5), [n, c, out, out]) },
  };
}

/** Whole step (built by buildTrainingStep) of two stacked depthwise convolutions, and the forward pass alone. */
async function depthwiseStep(): Promise<{ threads: number; stepMs: number; forwardMs: number }[]> {
  const [n, c, h] = [64, 32, 56];
  const forward = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: 17n })],
    graph: create(GraphProtoSchema, {
      name: 'depthwise',
      node: [
        makeNode('Conv', ['x', 'w1'], ['h1'], { group: c, pads: [1, 1, 1, 1] }, 'dw1'),
        makeNode('Conv', ['h1', 'w2'], ['y'], { group: c, pads: [1, 1, 1, 1] }, 'dw2'),
      ],
      initializer: [arrayToTensor('w1', random(c * 9, 7), [c, 1, 3, 3]), arrayToTensor('w2', random(c * 9, 9), [c, 1, 3, 3])],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', c, h, h])],
      output: [makeTensorValueInfo('y', DataType.FLOAT, ['batch', c, h, h])],
    }),
  });
  const { model: step, signature } = buildTrainingStep(forward, {
    mode: 'train',
    loss: [{ kind: 'mse', pairs: [{ student: 'y' }] }],
    optimizer: { kind: 'sgd', momentum: 0.9 },
  });
  const x = new ort.Tensor('float32', random(n * c * h * h, 3), [n, c, h, h]);
  const teacher = signature.teacherFeatures[0]?.name ?? '';
  const results: { threads: number; stepMs: number; forwardMs: number }[] = [];
  for (const threads of THREADS) {
    const stepSession = await session(step.toBytes(), threads);
    const forwardSession = await session(toBinary(ModelProtoSchema, forward), threads);
    const feeds: Record<string, ort.Tensor> = {
      x,
      [teacher]: new ort.Tensor('float32', new Float32Array(n * c * h * h), [n, c, h, h]),
      [signature.step]: new ort.Tensor('int64', BigInt64Array.of(1n), []),
      [signature.learningRate]: new ort.Tensor('float32', Float32Array.of(0), []),
    };
    for (const [name, value] of initialTrainingState(forward, signature)) feeds[name] = new ort.Tensor('float32', value.data, [...value.dims]);
    const best = { step: Infinity, forward: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [key, s, f] of [['step', stepSession, feeds], ['forward', forwardSession, { x }]] as const) {
        for (let w = 0; w < 2; w++) await s.run(f);
        const times: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          const start = performance.now();
          await s.run(f);
          times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        best[key] = Math.min(best[key], times[times.length >> 1] as number);
      }
    }
    await stepSession.release();
    await forwardSession.release();
    results.push({ threads, stepMs: Number(best.step.toFixed(2)), forwardMs: Number(best.forward.toFixed(2)) });
    console.log(`depthwise x2 training step, ${threads} thread(s): step ${best.step.toFixed(2)} ms, forward ${best.forward.toFixed(2)} ms`);
  }
  return results;
}

// `-- --only <text>`: run only the cases whose label contains the text (no results file).
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
const wanted = (label: string): boolean => only === undefined || label.includes(only);
const depthwise = depthwiseCases();
const comparisons: Comparison[] = [];
for (const [label, formulations] of [
  ['depthwise 3x3 weight gradient [64, 32, 56, 56]', depthwise.weight],
  ['depthwise 3x3 input gradient [64, 32, 56, 56]', depthwise.input],
] as const) {
  if (wanted(label)) comparisons.push(...(await compare(label, formulations, depthwise.feeds)));
}
for (const [label, shape] of [
  ['MaxPool 2x2/2 backward [64, 6, 28, 28] (LeNet-5)', [64, 6, 28, 2, 2, 0]],
  ['MaxPool 2x2/2 backward [64, 16, 32, 32]', [64, 16, 32, 2, 2, 0]],
  ['MaxPool 3x3/2 pad 1 backward [64, 16, 32, 32]', [64, 16, 32, 3, 2, 1]],
] as const) {
  if (!wanted(label)) continue;
  const [n, c, h, k, s, p] = shape;
  const pool = maxPoolCase(n, c, h, k, s, p);
  comparisons.push(...(await compare(label, pool.formulations, pool.feeds)));
}
if (only !== undefined) process.exit(0);
const step = await depthwiseStep();

const result = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length },
  versions: { node: process.versions.node, onnxruntimeNode: ort.env.versions.node ?? 'unknown' },
  method: `lowest of ${ROUNDS} interleaved rounds of the median of ${RUNS} runs (2 warm-up runs each), ms`,
  comparisons,
  depthwiseTrainingStep: { model: 'two stacked depthwise 3x3 convolutions, 32 channels, 56x56, batch 64, mse, SGD momentum', runs: step },
  pytorch: 'not measured: PyTorch is not installed on this machine',
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'gradients.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log('wrote bench/results/gradients.json');
