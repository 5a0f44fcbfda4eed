/**
 * `npm run bench:train [-- --models lenet5-fmnist,resnet8-fmnist] [-- --skip-acceptance]`: the
 * training benchmark of issue #3.
 *
 * Throughput: for each fixture model, one training step (cross-entropy, SGD lr 0.01 momentum 0.9,
 * train mode: the recipe of the PyTorch figures in fixtures/manifest.json) at batch 64 on the
 * model's evaluation split, with 1 and 2 onnxruntime threads; the median step time over 50 steps
 * after 5 warm-up steps, the lowest of 3 repeats (as fixtures/README.md "Reference timings" did
 * for PyTorch), reported as 64 / median samples per second next to PyTorch's
 * `pytorch_cpu_fp32.train_samples_per_s` (2 threads) as a ratio. A model whose operators have no
 * gradient rule yet is skipped with the reason.
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
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnsupportedOperationError } from '@open-autoglm/core';
import { buildTrainingStep, initialTrainingState, OnnxModel, type TrainingStepSignature } from '@open-autoglm/onnx';
import { createSession, loadDataset, runTrainingJob, type TensorMap, type TrainingJob } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { runCli } from '../apps/cli/src/runCli.js';
import { benchOption, median } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const args = process.argv.slice(2);
const option = benchOption;
const ALL_MODELS = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam'];
const models = (option('--models') ?? ALL_MODELS.join(',')).split(',');
const BATCH = 64;
const WARMUP = 5;
const STEPS = 50;
const REPEATS = 3;

interface Manifest {
  models: Record<string, { splits: { eval: string }; pytorch_cpu_fp32: { train_samples_per_s: number; train_b64_step_ms: number } }>;
}
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as Manifest;

/** Median step time (ms) of `STEPS` timed updates after `WARMUP`, feeding the updated state back. */
async function medianStepMs(stepBytes: Uint8Array, signature: TrainingStepSignature, model: OnnxModel, batch: TensorMap, threads: number): Promise<number> {
  const session = await createSession(stepBytes, { device: 'cpu', threads });
  try {
    const state = new Map<string, Tensor>();
    for (const [name, value] of initialTrainingState(model, signature)) state.set(name, new Tensor('float32', value.data, value.dims));
    const times: number[] = [];
    for (let i = 0; i < WARMUP + STEPS; i++) {
      const feeds: TensorMap = {
        ...batch,
        ...Object.fromEntries(state),
        [signature.step]: new Tensor('int64', BigInt64Array.of(BigInt(i + 1)), []),
        [signature.learningRate]: new Tensor('float32', Float32Array.of(0.01), []),
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

async function throughput(name: string): Promise<Record<string, unknown>> {
  const entry = manifest.models[name];
  if (entry === undefined) return { model: name, skipped: 'not in fixtures/manifest.json' };
  const model = await OnnxModel.load(join(fixtures, `${name}.onnx`));
  let step;
  try {
    step = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd', momentum: 0.9 }, mode: 'train' });
  } catch (error) {
    if (error instanceof UnsupportedOperationError) {
      console.log(`${name}: skipped (${error.message.slice(0, 120)}...)`);
      return { model: name, skipped: error.message };
    }
    throw error;
  }
  const split = entry.splits.eval;
  const data = await loadDataset({ x: join(fixtures, `${split}.x.npy`), y: join(fixtures, `${split}.y.npy`) });
  const first = data.batches(BATCH).next().value;
  if (first === undefined) throw new Error(`no data in ${split}`);
  const input = step.signature.batchInputs[0];
  const labels = step.signature.labels;
  if (input === undefined || labels === undefined) throw new Error(`unexpected step signature for ${name}`);
  const batch: TensorMap = {
    [input.name]: first.features['x'] as Tensor,
    [labels.name]: new Tensor('int64', first.labels as BigInt64Array, [BATCH]),
  };
  const bytes = step.model.toBytes();
  const result: Record<string, unknown> = { model: name, batch: BATCH, evalSplit: split, stepNodes: step.model.graph.nodes.length };
  for (const threads of [1, 2]) {
    const medians: number[] = [];
    for (let r = 0; r < REPEATS; r++) medians.push(await medianStepMs(bytes, step.signature, model, batch, threads));
    const best = Math.min(...medians);
    result[`threads${threads}`] = { stepMsMedians: medians.map((m) => +m.toFixed(3)), bestStepMs: +best.toFixed(3), samplesPerSecond: Math.round((BATCH * 1000) / best) };
  }
  const pytorch = entry.pytorch_cpu_fp32.train_samples_per_s;
  const ours2 = (result['threads2'] as { samplesPerSecond: number }).samplesPerSecond;
  result['pytorch2ThreadsSamplesPerSecond'] = pytorch;
  result['ratioVsPytorch2Threads'] = +(ours2 / pytorch).toFixed(3);
  console.log(`${name}: 1 thread ${(result['threads1'] as { samplesPerSecond: number }).samplesPerSecond} samples/s, 2 threads ${ours2} samples/s, PyTorch (2 threads) ${pytorch} -> ${result['ratioVsPytorch2Threads']}x`);
  return result;
}

/** LeNet-5 from scratch: 3 epochs on fmnist-train-10k, then the same run interrupted mid-epoch and resumed. */
async function acceptance(): Promise<Record<string, unknown>> {
  const trainX = ['fmnist-train-10k.x.npy', 'fmnist-train-10k.y.npy'].map((f) =>
    existsSync(join(fixtures, f)) ? join(fixtures, f) : join(repo, '..', 'shared', 'fixtures', f),
  );
  if (!trainX.every((f) => existsSync(f))) return { skipped: 'fmnist-train-10k.{x,y}.npy not found in fixtures/ or ../shared/fixtures/' };
  const dir = mkdtempSync(join(tmpdir(), 'autoglm-bench-train-'));
  try {
    // The acceptance run goes through the CLI itself (in this process; training runs in its worker thread).
    const out = join(dir, 'lenet5-trained.onnx');
    const argv = [
      'train', join(fixtures, 'lenet5-fmnist.onnx'), '--data', trainX[0] as string, '--labels', trainX[1] as string,
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
      data: trainX[0] as string,
      labels: trainX[1] as string,
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
const results: Record<string, unknown> = {
  benchmark: 'train',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
  versions: { node: process.version, onnxruntimeNode: ortVersion },
  method: `batch ${BATCH}; median step time over ${STEPS} steps after ${WARMUP} warm-up, lowest of ${REPEATS} repeats; samples/s = ${BATCH} / median; graph optimization "all", spinning off; PyTorch figures from fixtures/manifest.json (PyTorch 1.13 eager, 2 threads, same recipe)`,
  throughput: [] as unknown[],
};
for (const name of models) (results['throughput'] as unknown[]).push(await throughput(name));
if (!args.includes('--skip-acceptance')) results['acceptance'] = await acceptance();
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'train.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${join('bench', 'results', 'train.json')}`);
