/**
 * `npm run bench:train [-- --models lenet5-fmnist,resnet8-fmnist] [-- --skip-acceptance]`: the
 * training benchmark of issue #3. Options for experiments: `--steps N`, `--repeats N`,
 * `--spinning`, `--optimization disabled|basic|extended|all`, `--no-pytorch`, `--python <path>`,
 * `--pytorch-glibc-malloc-defaults`,
 * `--out <file>` (default bench/results/train.json), `--profile` (onnxruntime's kernel time per
 * operator type and of the slowest nodes of each model's step, under `threadsN.profile`),
 * `--convolution-input-gradient transposedConv|flippedConv` (TrainingStepSpec.convolutionInputGradient).
 *
 * Why 2 threads train slower than 1 (bench/results/train-conv-input-gradient.json): on a quiet
 * moment (load ~2) onnxruntime's profile put resnet8's step kernels at 97 ms with 1 thread and
 * 141 ms with 2 (vgg11bn 92 -> 117); by op type Slice (the tap-wise weight gradient's windows)
 * 2.5x slower at 2 threads, ConvTranspose 1.6x (resnet8) / 1.1x, FusedMatMul 1.3-1.6x, Mul
 * 1.4-1.65x, Conv 1.06-1.2x. Under load 9-16 the main thread still spent 73-86 of resnet8's
 * 86-90 CPU ms per step at 2 threads (vgg11bn: 60 of 90-113), the worker's 25-37 ms on top. onnxruntime's NCHWc Conv (batched, well
 * threaded) needs a constant weight, so every Conv of a training step (weights are inputs) runs
 * on the generic MLAS path image by image, as ConvTranspose does; the flipped-kernel Conv input
 * gradient therefore did not help (quiet machine: slower at 1 thread, vgg11bn median step 74-80
 * vs 101-106 ms; at 2 threads a tie or a noisy gain). Steps at 2 threads stayed slower than at 1
 * even on the quiet machine (vgg11bn 74-80 -> 98-142 ms, resnet8 76-79 -> 88-111 ms).
 *
 * Throughput: for each fixture model and for `mobilenet-dw4` (depthwise-separable blocks, built
 * by bench/mobilenetModel.ts), one training step (cross-entropy, SGD lr 0.01 momentum 0.9, train
 * mode: the recipe of the PyTorch figures in fixtures/manifest.json) at batch 64 on the model's
 * evaluation split, with 1 and 2 onnxruntime threads; the median step time over 50 steps after 5
 * warm-up steps, the lowest of 3 repeats (as fixtures/README.md "Reference timings" did for
 * PyTorch), reported as 64 / median samples per second. A model whose operators have no gradient
 * rule yet is skipped with the reason.
 *
 * PyTorch side by side: when a Python with torch is found (bench/pytorch/PytorchStepTimer.ts),
 * PyTorch eager trains the same graph with the same batch, optimizer and thread count, its
 * repeats interleaved with ours, and `ratioVsPytorch` is our samples/s over PyTorch's. Without
 * torch the bench says so and compares with the manifest's PyTorch figures (2 threads) only,
 * which are always reported too.
 *
 * Two settings make PyTorch's figures here those of PyTorch run alone, found with
 * bench/pytorch/harnessExperiment.ts (one change at a time, A/B repeats interleaved with ours, load
 * average 11-13 from other jobs; bench/results/train-pytorch-harness-*.json):
 * - glibc malloc keeps freed memory in the Python process (GLIBC_TUNABLES). With glibc's defaults
 *   each PyTorch step handed its activations back to the kernel and faulted fresh pages in the
 *   next: LeNet-5 780-900 minor faults per step, 6-7 ms of system time and ~10 ms more user time
 *   (faults are expensive on this VM, which returns freed memory to its host), CPU per step 24-26
 *   -> 7.3-8.5 ms, median step 48-70 -> 15-25 ms; resnet8 980-1,590 faults, 237-270 -> 162-228 ms.
 *   Their cost varies from run to run: the likely cause of an earlier run's 18-25 ms "inside the
 *   bench" against 5-6 ms alone (not re-created: under this load no setting reaches 5-6 ms).
 *   Ruled out: our steps between PyTorch's (same faults and CPU per step with and without them);
 *   our process competing (under 1 % of a core while PyTorch ran: onnxruntime's threads do not
 *   spin, spinning is off); affinity (both cores), OMP/MKL variables (none), extra threads (one
 *   at 1 thread), the pipe (0 voluntary switches while timing), Python's garbage collector (off
 *   via sitecustomize: 7.8-8.1 vs 7.8-8.3 ms CPU per step). `--pytorch-glibc-malloc-defaults`
 *   restores glibc's defaults.
 * - At 2 threads libgomp's idle threads spin (its default wait policy); on the loaded machine a
 *   thread spinning for a preempted partner made LeNet-5's median step 186-386 ms (75-116 ms CPU
 *   per step) against 8-28 ms with OMP_WAIT_POLICY=PASSIVE. So at 2 threads PyTorch is timed both
 *   ways and the ratio is against the faster; on a quiet machine the default policy may win.
 * Each PyTorch repeat records its user/system CPU, page faults and preemptions per step, so a
 * disturbed figure shows why. Our side keeps the runtime's default, spinning off: on the same
 * loaded machine spinning on made our 2-thread steps slower (LeNet-5 median 52-69 vs 8-11 ms,
 * resnet8 509-691 vs 324-363 ms; bench/results/train-ort-spinning-*.json); `--spinning` measures
 * it on a quiet one.
 *
 * Acceptance (issue #3): `autoglm train` on LeNet-5 re-initialized with seed 0 (PyTorch's default
 * initialization), 3 epochs on fmnist-train-10k (AdamW lr 1e-3, batch 32, 2 threads), with the
 * accuracy on fmnist-val-2k after each epoch; then the same run (through runTrainingJob)
 * uninterrupted, and interrupted in the middle of epoch 2 and resumed from its checkpoint, whose
 * final loss must equal the uninterrupted run's within 1e-5.
 * fmnist-train-10k is read from fixtures/ or, when absent there, from ../shared/fixtures/.
 *
 * Writes bench/results/train.json.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedOperationError } from '@open-autoglm/core';
import { buildTrainingStep, initialTrainingState, OnnxModel, type TrainingStepSignature, writeFileAtomic } from '@open-autoglm/onnx';
import { createSession, loadDataset, resolveRuntimeTarget, runTrainingJob, sessionOptionsForTarget, type TensorMap, type TrainingJob } from '@open-autoglm/runtime';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { runCli } from '../apps/cli/src/runCli.js';
import { benchOption, median, trainingSplitFiles } from './benchSupport.js';
import { mobilenetModel } from './mobilenetModel.js';
import { type PytorchStepTiming, PytorchStepTimer } from './pytorch/PytorchStepTimer.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const args = process.argv.slice(2);
const option = benchOption;
const MOBILENET = 'mobilenet-dw4';
const ALL_MODELS = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam', MOBILENET];
const models = (option('--models') ?? ALL_MODELS.join(',')).split(',');
const BATCH = 64;
const WARMUP = 5;
const STEPS = Number(option('--steps') ?? 50);
const REPEATS = Number(option('--repeats') ?? 3);
/** A PyTorch repeat stops after this many seconds (at least 10 timed steps): 2 OpenMP threads on a loaded 2-core machine can take seconds per step. */
const PYTORCH_SECONDS_PER_REPEAT = 20;
/** `--profile`: also record onnxruntime's per-operator kernel times of each step (one extra session per model and thread count). */
const PROFILE = args.includes('--profile');
const PROFILE_STEPS = 10;
const LEARNING_RATE = 0.01;
const MOMENTUM = 0.9;
/** Session settings to try (`--spinning`, `--optimization basic`); the defaults are the runtime's. */
const SPINNING = args.includes('--spinning');
const OPTIMIZATION = option('--optimization') as 'disabled' | 'basic' | 'extended' | 'all' | undefined;
const CONVOLUTION_INPUT_GRADIENT = option('--convolution-input-gradient') as 'transposedConv' | 'flippedConv' | undefined;

interface Manifest {
  models: Record<string, { splits: { eval: string }; pytorch_cpu_fp32: { train_samples_per_s: number; train_b64_step_ms: number } }>;
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Manifest;

/** Median step time (ms) of `STEPS` timed updates after `WARMUP`, feeding the updated state back. */
async function medianStepMs(stepBytes: Uint8Array, signature: TrainingStepSignature, model: OnnxModel, batch: TensorMap, threads: number): Promise<number> {
  const session = await createSession(stepBytes, { device: 'cpu', threads, spinning: SPINNING, ...(OPTIMIZATION === undefined ? {} : { optimizationLevel: OPTIMIZATION }) });
  try {
    const state = new Map<string, Tensor>();
    for (const [name, value] of initialTrainingState(model, signature)) state.set(name, new Tensor('float32', value.data, value.dims));
    const times: number[] = [];
    for (let i = 0; i < WARMUP + STEPS; i++) {
      const feeds: TensorMap = {
        ...batch,
        ...Object.fromEntries(state),
        [signature.step]: new Tensor('int64', BigInt64Array.of(BigInt(i + 1)), []),
        [signature.learningRate]: new Tensor('float32', Float32Array.of(LEARNING_RATE), []),
      };
      const start = performance.now();
      const outputs = await session.run(feeds);
      const elapsed = performance.now() - start;
      if (i >= WARMUP) times.push(elapsed);
      for (const p of signature.parameters) {
        state.set(p.name, outputs[p.updated] as Tensor);
        for (const s of p.state) state.set(s.name, outputs[s.updated] as Tensor);
      }
      for (const b of signature.buffers) state.set(b.name, outputs[b.updated] as Tensor);
    }
    return median(times);
  } finally {
    await session.release();
  }
}

/** Where a step's time goes: onnxruntime's profile of `PROFILE_STEPS` steps, kernel time per operator type. */
async function profileStep(stepBytes: Uint8Array, signature: TrainingStepSignature, model: OnnxModel, batch: TensorMap, threads: number): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'autoglm-bench-profile-'));
  const target = resolveRuntimeTarget({ device: 'cpu', threads, spinning: SPINNING, ...(OPTIMIZATION === undefined ? {} : { optimizationLevel: OPTIMIZATION }) });
  const session = await InferenceSession.create(stepBytes, { ...sessionOptionsForTarget(target), enableProfiling: true, profileFilePrefix: join(dir, 'step') });
  try {
    const feeds: TensorMap = {
      ...batch,
      [signature.step]: new Tensor('int64', BigInt64Array.of(1n), []),
      [signature.learningRate]: new Tensor('float32', Float32Array.of(LEARNING_RATE), []),
    };
    for (const [name, value] of initialTrainingState(model, signature)) feeds[name] = new Tensor('float32', value.data, value.dims);
    await session.run(feeds); // the first run allocates; keep it out of the profile's averages
    for (let i = 0; i < PROFILE_STEPS; i++) await session.run(feeds);
    session.endProfiling();
  } finally {
    await session.release();
  }
  try {
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (file === undefined) return { skipped: 'onnxruntime wrote no profile' };
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur).slice(1);
    const byOp = new Map<string, { us: number; count: number }>();
    const byNode = new Map<string, { op: string; us: number }>();
    const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
    // Skip the first run's kernels: the profile holds 1 + PROFILE_STEPS runs.
    for (const e of kernels.slice(kernels.length / (PROFILE_STEPS + 1))) {
      const op = e.args?.op_name ?? 'unknown';
      const entry = byOp.get(op) ?? { us: 0, count: 0 };
      entry.us += e.dur;
      entry.count++;
      byOp.set(op, entry);
      const node = e.name.slice(0, -'_kernel_time'.length);
      byNode.set(node, { op, us: (byNode.get(node)?.us ?? 0) + e.dur });
    }
    const perRun = (us: number): number => +(us / PROFILE_STEPS / 1000).toFixed(3);
    const kernelUs = [...byOp.values()].reduce((a, b) => a + b.us, 0);
    return {
      steps: PROFILE_STEPS,
      runMs: perRun(runs.reduce((a, b) => a + b, 0)),
      kernelMs: perRun(kernelUs),
      kernelsPerRun: kernels.length / (PROFILE_STEPS + 1),
      kernelMsByOpType: Object.fromEntries(
        [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 12).map(([op, e]) => [op, { ms: perRun(e.us), perRun: e.count / PROFILE_STEPS }]),
      ),
      kernelMsOfSlowestNodes: Object.fromEntries(
        [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, 12).map(([node, e]) => [node, { op: e.op, ms: perRun(e.us) }]),
      ),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The model to time: a fixture, or the bench-built depthwise net with its data split. */
async function benchModel(name: string): Promise<{ model: OnnxModel; split: string; pytorchReference?: number } | string> {
  if (name === MOBILENET) return { model: mobilenetModel(), split: 'fmnist-val-2k' };
  const entry = manifest.models[name];
  if (entry === undefined) return 'not in fixtures/manifest.json';
  return { model: await OnnxModel.load(join(fixtures, `${name}.onnx`)), split: entry.splits.eval, pytorchReference: entry.pytorch_cpu_fp32.train_samples_per_s };
}

const samplesPerSecond = (ms: number): number => Math.round((BATCH * 1000) / ms);

async function throughput(name: string): Promise<Record<string, unknown>> {
  const chosen = await benchModel(name);
  if (typeof chosen === 'string') return { model: name, skipped: chosen };
  const { model, split, pytorchReference } = chosen;
  let step;
  try {
    step = buildTrainingStep(model, {
      loss: [{ kind: 'crossEntropy' }],
      optimizer: { kind: 'sgd', momentum: MOMENTUM },
      mode: 'train',
      ...(CONVOLUTION_INPUT_GRADIENT === undefined ? {} : { convolutionInputGradient: CONVOLUTION_INPUT_GRADIENT }),
    });
  } catch (error) {
    if (error instanceof UnsupportedOperationError) {
      console.log(`${name}: skipped (${error.message.slice(0, 120)}...)`);
      return { model: name, skipped: error.message };
    }
    throw error;
  }
  const data = await loadDataset({ x: join(fixtures, `${split}.x.npy`), y: join(fixtures, `${split}.y.npy`) });
  const first = data.batches(BATCH).next().value;
  if (first === undefined) throw new Error(`no data in ${split}`);
  const input = step.signature.batchInputs[0];
  const labels = step.signature.labels;
  if (input === undefined || labels === undefined) throw new Error(`unexpected step signature for ${name}`);
  const x = first.features['x'] as Tensor;
  const batch: TensorMap = {
    [input.name]: x,
    [labels.name]: new Tensor('int64', first.labels as BigInt64Array, [BATCH]),
  };
  const bytes = step.model.toBytes();
  const result: Record<string, unknown> = { model: name, batch: BATCH, evalSplit: split, stepNodes: step.model.graph.nodes.length };
  if (pytorch !== undefined) {
    const trained = step.signature.parameters.map((p) => p.name);
    const timerBatch = { input: { name: input.name, data: x.data as Float32Array | BigInt64Array, dims: x.dims }, labels: first.labels as BigInt64Array };
    for (const side of pytorch) await side.timer.load(name, model, trained, timerBatch);
  }
  for (const threads of [1, 2]) {
    const ours: number[] = [];
    // With one thread PyTorch starts no OpenMP team, so its wait policy matters only at 2 threads.
    const sides = (pytorch ?? []).filter((side) => threads > 1 || side.key === 'pytorch');
    const theirs = new Map<PytorchSide['key'], PytorchStepTiming[]>(sides.map((side) => [side.key, []]));
    // Interleaved (ours, PyTorch, ours, PyTorch, ...) so a busy moment of the shared machine hits both.
    const load: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      load.push(+(loadavg()[0] ?? 0).toFixed(2));
      ours.push(await medianStepMs(bytes, step.signature, model, batch, threads));
      for (const side of sides) {
        const timing = await side.timer.timeSteps(name, { threads, warmup: WARMUP, steps: STEPS, maxSeconds: PYTORCH_SECONDS_PER_REPEAT, lr: LEARNING_RATE, momentum: MOMENTUM });
        theirs.get(side.key)?.push(timing);
      }
    }
    const best = Math.min(...ours);
    const entry: Record<string, unknown> = { loadAverage1mAtRepeats: load, stepMsMedians: ours.map((m) => +m.toFixed(3)), bestStepMs: +best.toFixed(3), samplesPerSecond: samplesPerSecond(best) };
    let fastest: { key: string; ms: number } | undefined;
    for (const [key, timings] of theirs) {
      const medians = timings.map((t) => t.stepMsMedian);
      const bestTheirs = Math.min(...medians);
      const perRepeat = (pick: (t: PytorchStepTiming) => number): number[] => timings.map((t) => +pick(t).toFixed(2));
      entry[key] = {
        stepMsMedians: medians.map((m) => +m.toFixed(3)),
        bestStepMs: +bestTheirs.toFixed(3),
        samplesPerSecond: samplesPerSecond(bestTheirs),
        userMsPerStep: perRepeat((t) => t.userMsPerStep),
        systemMsPerStep: perRepeat((t) => t.systemMsPerStep),
        minorFaultsPerStep: perRepeat((t) => t.minorFaultsPerStep),
        involuntarySwitchesPerStep: perRepeat((t) => t.involuntarySwitchesPerStep),
      };
      if (fastest === undefined || bestTheirs < fastest.ms) fastest = { key, ms: bestTheirs };
    }
    if (fastest !== undefined) {
      entry['ratioVsPytorch'] = +(fastest.ms / best).toFixed(3);
      entry['ratioVsPytorchIsAgainst'] = fastest.key;
    }
    if (PROFILE) entry['profile'] = await profileStep(bytes, step.signature, model, batch, threads);
    result[`threads${threads}`] = entry;
  }
  const line = [1, 2].map((threads) => {
    const entry = result[`threads${threads}`] as Record<string, unknown> & { samplesPerSecond: number; ratioVsPytorch?: number; ratioVsPytorchIsAgainst?: string };
    const against = entry.ratioVsPytorchIsAgainst === undefined ? undefined : (entry[entry.ratioVsPytorchIsAgainst] as { samplesPerSecond: number });
    const side = against === undefined ? '' : ` vs PyTorch ${against.samplesPerSecond} (${entry.ratioVsPytorch}x, ${entry.ratioVsPytorchIsAgainst})`;
    return `${threads} thread(s) ${entry.samplesPerSecond} samples/s${side}`;
  });
  if (pytorchReference !== undefined) {
    const ours2 = (result['threads2'] as { samplesPerSecond: number }).samplesPerSecond;
    result['manifestPytorch2ThreadsSamplesPerSecond'] = pytorchReference;
    result['ratioVsManifestPytorch2Threads'] = +(ours2 / pytorchReference).toFixed(3);
    line.push(`manifest PyTorch (2 threads) ${pytorchReference} -> ${result['ratioVsManifestPytorch2Threads']}x`);
  }
  console.log(`${name}: ${line.join('; ')}`);
  return result;
}

/** LeNet-5 from scratch: 3 epochs on fmnist-train-10k, then the same run interrupted mid-epoch and resumed. */
async function acceptance(): Promise<Record<string, unknown>> {
  const trainingSplit = trainingSplitFiles();
  if (trainingSplit === undefined) return { skipped: 'fmnist-train-10k.{x,y}.npy not found in fixtures/ or ../shared/fixtures/' };
  const dir = mkdtempSync(join(tmpdir(), 'autoglm-bench-train-'));
  try {
    // The acceptance run goes through the CLI itself (in this process; training runs in its worker thread).
    const out = join(dir, 'lenet5-trained.onnx');
    const argv = [
      'train', join(fixtures, 'lenet5-fmnist.onnx'), '--data', trainingSplit.x, '--labels', trainingSplit.y,
      '--val-data', join(fixtures, 'fmnist-val-2k.x.npy'), '--val-labels', join(fixtures, 'fmnist-val-2k.y.npy'),
      '--epochs', '3', '--batch', '32', '--optimizer', 'adamw', '--lr', '0.001', '--reinit', '--seed', '0', '--threads', '2',
      '--out', out, '--json',
    ];
    let stdout = '';
    let stderr = '';
    const started = performance.now();
    const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
    const seconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`autoglm ${argv.join(' ')} failed (${code}): ${stderr}`);
    const cli = JSON.parse(stdout) as { finalLoss: number; validationAccuracy: (number | null)[]; samplesPerSecond: number };
    // The same run through runTrainingJob, uninterrupted and interrupted in the middle of epoch 2 then resumed.
    const job: TrainingJob = {
      model: join(fixtures, 'lenet5-fmnist.onnx'),
      data: trainingSplit.x,
      labels: trainingSplit.y,
      epochs: 3,
      batchSize: 32,
      seed: 0,
      reinitSeed: 0,
      spec: { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adamw' } },
      schedule: { kind: 'constant', lr: 1e-3 },
      threads: 2,
    };
    const full = await runTrainingJob(job);
    const checkpoint = join(dir, 'mid.ckpt');
    const interruptAt = full.stepsPerEpoch + Math.floor(full.stepsPerEpoch / 2);
    const first = await runTrainingJob({ ...job, checkpoint, maxSteps: interruptAt });
    const resumed = await runTrainingJob({ ...job, resume: checkpoint });
    const difference = Math.abs((resumed.finalLoss ?? Number.NaN) - (full.finalLoss ?? Number.NaN));
    const accuracies = cli.validationAccuracy;
    const result = {
      command: `autoglm ${argv.map((a) => a.replace(repo, '.').replace(dir, '<tmp>')).join(' ')}`,
      validationAccuracyPerEpoch: accuracies,
      finalLoss: cli.finalLoss,
      reaches85PercentWithin3Epochs: accuracies.some((a) => a !== null && a >= 0.85),
      wallSeconds: +seconds.toFixed(2),
      trainingSamplesPerSecond: Math.round(cli.samplesPerSecond),
      resume: {
        interruptedAfterStep: first.position.step,
        position: first.position,
        uninterruptedFinalLoss: full.finalLoss,
        resumedFinalLoss: resumed.finalLoss,
        absoluteDifference: difference,
        within1e5: difference <= 1e-5,
      },
    };
    console.log(`acceptance: val acc per epoch ${accuracies.map((a) => (a === null ? 'n/a' : (a * 100).toFixed(2))).join(', ')} %; resume difference ${difference}`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
/**
 * The PyTorch processes: `pytorch` with libgomp's default wait policy (the manifest's recipe) and
 * `pytorchOmpPassive` with OMP_WAIT_POLICY=PASSIVE, whose idle threads sleep as onnxruntime's do
 * with spinning off; ratioVsPytorch is against the faster of the two.
 */
interface PytorchSide {
  readonly key: 'pytorch' | 'pytorchOmpPassive';
  readonly timer: PytorchStepTimer;
}
async function startPytorch(): Promise<PytorchSide[] | string> {
  if (args.includes('--no-pytorch')) return 'skipped (--no-pytorch)';
  const keepFreedMemory = !args.includes('--pytorch-glibc-malloc-defaults');
  const sides: PytorchSide[] = [];
  for (const [key, ompWaitPolicy] of [['pytorch', undefined], ['pytorchOmpPassive', 'PASSIVE']] as const) {
    const timer = await PytorchStepTimer.start(option('--python'), { keepFreedMemory, ...(ompWaitPolicy === undefined ? {} : { ompWaitPolicy }) });
    if (typeof timer === 'string') {
      for (const side of sides) await side.timer.close();
      return timer;
    }
    sides.push({ key, timer });
  }
  return sides;
}
const started = await startPytorch();
const pytorch = typeof started === 'string' ? undefined : started;
const firstPytorch = pytorch?.[0]?.timer;
if (typeof started === 'string') console.log(`PyTorch side by side: unavailable (${started}); comparing with the manifest figures only`);
const results: Record<string, unknown> = {
  benchmark: 'train',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
  versions: { node: process.version, onnxruntimeNode: ortVersion, pytorch: firstPytorch?.torchVersion ?? null },
  method:
    `batch ${BATCH}, SGD lr ${LEARNING_RATE} momentum ${MOMENTUM}, cross-entropy, train mode; median step time over ${STEPS} steps after ${WARMUP} warm-up, ` +
    `lowest of ${REPEATS} repeats; samples/s = ${BATCH} / median; onnxruntime graph optimization ${OPTIMIZATION ?? '"all"'}, spinning ${SPINNING ? 'on' : 'off'}, ` +
    `convolution input gradient ${CONVOLUTION_INPUT_GRADIENT ?? 'default (transposedConv)'}. ` +
    'PyTorch side by side (threadsN.pytorch, ratioVsPytorch = our samples/s over PyTorch\'s at the same thread count): PyTorch eager running the same ' +
    'ONNX graph through bench/pytorch/train_speed.py (F.conv2d, F.batch_norm, ... + autograd + torch.optim.SGD), torch.set_num_threads(N), ' +
    'OPENBLAS_NUM_THREADS=1, repeats interleaved with ours (ours, PyTorch, ours, PyTorch, ...) on the same machine in the same run. ' +
    `${args.includes('--pytorch-glibc-malloc-defaults') ? 'glibc malloc defaults (--pytorch-glibc-malloc-defaults)' : 'glibc malloc told to keep freed memory (GLIBC_TUNABLES, see pytorchSideBySide.environment): no page faults per step'}; ` +
    'at 2 threads PyTorch runs twice per repeat, with libgomp\'s default wait policy (threads2.pytorch) and OMP_WAIT_POLICY=PASSIVE (threads2.pytorchOmpPassive), ' +
    'and ratioVsPytorch is against the faster (ratioVsPytorchIsAgainst). Per repeat, PyTorch\'s user and system CPU ms, minor page faults and involuntary context switches per step. ' +
    'manifestPytorch2ThreadsSamplesPerSecond: the figure of fixtures/manifest.json (PyTorch 1.13 eager, 2 threads, same recipe, measured earlier).',
  pytorchSideBySide:
    pytorch === undefined || firstPytorch === undefined
      ? { unavailable: started }
      : { python: firstPytorch.python, blas: firstPytorch.blas, environment: Object.fromEntries(pytorch.map((side) => [side.key, side.timer.environment])) },
  throughput: [] as unknown[],
};
try {
  for (const name of models) (results['throughput'] as unknown[]).push(await throughput(name));
} finally {
  for (const side of pytorch ?? []) await side.timer.close();
}
if (!args.includes('--skip-acceptance')) results['acceptance'] = await acceptance();
const out = option('--out') ?? join(here, 'results', 'train.json');
mkdirSync(dirname(out), { recursive: true });
await writeFileAtomic(out, new TextEncoder().encode(`${JSON.stringify(results, null, 2)}\n`));
console.log(`wrote ${out}`);
