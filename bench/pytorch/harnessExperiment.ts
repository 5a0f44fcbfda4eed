/**
 * The experiments behind bench/train.ts's PyTorch settings (not a benchmark): runs a sequence of
 * repeats of one model's batch-64 training step and prints each one's time and diagnostics:
 * `O` = our step (50 steps after 5, as bench/train.ts times it, onnxruntime spinning off), `S` =
 * the same with spinning on, `P` and `Q` = a PyTorch repeat in one of two Python processes set up
 * differently (an A/B of the child's set-up), `W` = wait 2 s.
 *
 *   npx tsx --conditions=@open-autoglm/source bench/pytorch/harnessExperiment.ts --model lenet5-fmnist \
 *     --threads 1 --sequence PQOPQOPQ --p-glibc-malloc-defaults [--q-omp-passive] [--ort-threads 2] [--out f.json]
 *
 * Both processes get PytorchStepTimer's settings (OPENBLAS_NUM_THREADS=1, glibc keeping freed
 * memory) except: `--p-glibc-malloc-defaults` / `--q-glibc-malloc-defaults` (glibc's defaults in
 * that process), `--p-omp-passive` / `--q-omp-passive` (OMP_WAIT_POLICY=PASSIVE), `--python` /
 * `--python-b` (another interpreter or a wrapper script exporting a variable under test).
 * `--out` also writes the repeats as JSON (atomically).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { buildTrainingStep, initialTrainingState, OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { createSession, loadDataset, type TensorMap } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { benchOption, median } from '../benchSupport.js';
import { type PytorchProcessOptions, PytorchStepTimer } from './PytorchStepTimer.js';

const repo = join(import.meta.dirname, '..', '..');
const name = benchOption('--model') ?? 'lenet5-fmnist';
const threads = Number(benchOption('--threads') ?? 1);
const ortThreads = Number(benchOption('--ort-threads') ?? threads);
const sequence = benchOption('--sequence') ?? 'OPOPOP';
const manifest = JSON.parse(readFileSync(join(repo, 'fixtures', 'manifest.json'), 'utf8')) as { models: Record<string, { splits: { eval: string } }> };
const split = manifest.models[name]?.splits.eval ?? 'fmnist-val-2k';
const model = await OnnxModel.load(join(repo, 'fixtures', `${name}.onnx`));
const step = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd', momentum: 0.9 }, mode: 'train' });
const data = await loadDataset({ x: join(repo, 'fixtures', `${split}.x.npy`), y: join(repo, 'fixtures', `${split}.y.npy`) });
const first = data.batches(64).next().value;
if (first === undefined) throw new Error('no data');
const x = first.features['x'] as Tensor;
const input = step.signature.batchInputs[0]?.name ?? 'input';
const batch: TensorMap = { [input]: x, [step.signature.labels?.name ?? 'labels']: new Tensor('int64', first.labels as BigInt64Array, [64]) };
const bytes = step.model.toBytes();

async function ours(spinning: boolean): Promise<Record<string, number>> {
  const session = await createSession(bytes, { device: 'cpu', threads: ortThreads, spinning });
  try {
    const state = new Map<string, Tensor>();
    for (const [n, value] of initialTrainingState(model, step.signature)) state.set(n, new Tensor('float32', value.data, value.dims));
    const times: number[] = [];
    let usage = process.resourceUsage();
    for (let i = 0; i < 55; i++) {
      if (i === 5) usage = process.resourceUsage();
      const feeds: TensorMap = { ...batch, ...Object.fromEntries(state), [step.signature.step]: new Tensor('int64', BigInt64Array.of(BigInt(i + 1)), []), [step.signature.learningRate]: new Tensor('float32', Float32Array.of(0.01), []) };
      const start = performance.now();
      const outputs = await session.run(feeds);
      if (i >= 5) times.push(performance.now() - start);
      for (const p of step.signature.parameters) {
        state.set(p.name, outputs[p.updated] as Tensor);
        for (const s of p.state) state.set(s.name, outputs[s.updated] as Tensor);
      }
      for (const b of step.signature.buffers) state.set(b.name, outputs[b.updated] as Tensor);
    }
    const after = process.resourceUsage();
    const perStep = (a: number, b: number, scale = 1): number => +((a - b) / times.length / scale).toFixed(3);
    return {
      stepMsMedian: +median(times).toFixed(3),
      stepMsMin: +Math.min(...times).toFixed(3),
      userMsPerStep: perStep(after.userCPUTime, usage.userCPUTime, 1000),
      systemMsPerStep: perStep(after.systemCPUTime, usage.systemCPUTime, 1000),
      minorFaultsPerStep: perStep(after.minorPageFault, usage.minorPageFault),
    };
  } finally {
    await session.release();
  }
}

async function startTimer(python: string | undefined, letter: 'p' | 'q'): Promise<PytorchStepTimer> {
  const options: PytorchProcessOptions = {
    keepFreedMemory: !process.argv.includes(`--${letter}-glibc-malloc-defaults`),
    ...(process.argv.includes(`--${letter}-omp-passive`) ? { ompWaitPolicy: 'PASSIVE' as const } : {}),
  };
  const timer = await PytorchStepTimer.start(python, options);
  if (typeof timer === 'string') throw new Error(timer);
  await timer.load(name, model, step.signature.parameters.map((p) => p.name), { input: { name: input, data: x.data as Float32Array, dims: x.dims }, labels: first.labels as BigInt64Array });
  return timer;
}
const timers = { P: await startTimer(benchOption('--python'), 'p'), Q: sequence.includes('Q') ? await startTimer(benchOption('--python-b'), 'q') : undefined };
const childStatus = (timer: PytorchStepTimer): string =>
  readFileSync(`/proc/${timer.pid}/status`, 'utf8').split('\n').filter((l) => /^(Threads|Cpus_allowed_list)/.test(l)).join(', ').replace(/\t/g, ' ');
const child = `${childStatus(timers.P)}; OMP/BLAS/MKL environment: ${readFileSync(`/proc/${timers.P.pid}/environ`, 'utf8').split('\0').filter((e) => /OMP|BLAS|MKL|KMP/.test(e)).join(' ')}`;
console.log(`P process: ${child}`);
const repeats: Record<string, unknown>[] = [];
for (const what of sequence) {
  const load = +(loadavg()[0] ?? 0).toFixed(2);
  if (what === 'W') {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    continue;
  }
  if (what === 'O' || what === 'S') {
    const timing = await ours(what === 'S');
    repeats.push({ repeat: what, load, ...timing });
    console.log(`${what} ours ${JSON.stringify(timing)} (load ${load})`);
    continue;
  }
  const timer = what === 'Q' ? timers.Q : timers.P;
  if (timer === undefined) throw new Error(`unknown repeat ${what}: use O, S, P, Q or W`);
  const nodeCpu = process.cpuUsage();
  const { stepMs, ...timing } = await timer.timeSteps(name, { threads, warmup: 5, steps: 50, maxSeconds: 20, lr: 0.01, momentum: 0.9 });
  const nodeUsage = process.cpuUsage(nodeCpu);
  const wallMs = stepMs.reduce((a, b) => a + b, 0);
  // Whether our process (onnxruntime's pool, the worker) competes with PyTorch while it runs.
  const ourCpuShareMeanwhile = +((nodeUsage.user + nodeUsage.system) / 1000 / wallMs).toFixed(3);
  const row = { repeat: what, load, ...timing, stepMsMin: Math.min(...stepMs), stepMsMax: Math.max(...stepMs), ourCpuShareMeanwhile };
  repeats.push(row);
  console.log(`${what} pytorch ${JSON.stringify(row)}`);
}
await timers.P.close();
await timers.Q?.close();
const out = benchOption('--out');
if (out !== undefined) {
  const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  const result = {
    experiment: 'PyTorch harness A/B (bench/pytorch/harnessExperiment.ts)',
    date: new Date().toISOString(),
    command: process.argv.slice(2).join(' '),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
    versions: { node: process.version, onnxruntimeNode: ortVersion, pytorch: timers.P.torchVersion },
    model: name,
    batch: 64,
    threads: { pytorch: threads, onnxruntime: ortThreads },
    environments: { P: timers.P.environment, Q: timers.Q?.environment ?? null },
    pProcess: child,
    repeats,
  };
  await writeFileAtomic(out, new TextEncoder().encode(`${JSON.stringify(result, null, 2)}\n`));
  console.log(`wrote ${out}`);
}
