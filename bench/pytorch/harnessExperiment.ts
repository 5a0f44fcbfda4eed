/**
 * The experiments behind bench/train.ts's PyTorch settings (not a benchmark): runs a sequence of
 * repeats of one model's batch-64 training step and prints each one's time and diagnostics:
 * `O` = our step (50 steps after 5, as bench/train.ts times it, onnxruntime spinning off), `S` =
 * the same with spinning on, `P` = a PyTorch repeat in the process of `--python`, `Q` = one in
 * the process of `--python-b` (an A/B of the child's set-up: a wrapper script exporting the
 * variable under test and exec'ing python3), `W` = wait 2 s.
 *
 *   npx tsx --conditions=@open-autoglm/source bench/pytorch/harnessExperiment.ts \
 *     --model lenet5-fmnist --threads 1 --sequence PQOPQOPQ --python-b /tmp/wrapper.sh [--ort-threads 2]
 *
 * Both PyTorch processes get PytorchStepTimer's own settings (OPENBLAS_NUM_THREADS=1 and glibc
 * keeping freed memory) unless `--glibc-malloc-defaults`; the wrapper's exports come on top.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { buildTrainingStep, initialTrainingState, OnnxModel } from '@open-autoglm/onnx';
import { createSession, loadDataset, type TensorMap } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { benchOption, median } from '../benchSupport.js';
import { PytorchStepTimer } from './PytorchStepTimer.js';

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

async function ours(spinning: boolean): Promise<string> {
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
    const perStep = (a: number, b: number): string => ((a - b) / times.length).toFixed(1);
    return `${median(times).toFixed(2)} ms, min ${Math.min(...times).toFixed(2)}, user/step ${perStep(after.userCPUTime, usage.userCPUTime)} us, sys/step ${perStep(after.systemCPUTime, usage.systemCPUTime)} us, faults/step ${perStep(after.minorPageFault, usage.minorPageFault)}`;
  } finally {
    await session.release();
  }
}

async function startTimer(python: string | undefined): Promise<PytorchStepTimer> {
  const timer = await PytorchStepTimer.start(python, { keepFreedMemory: !process.argv.includes('--glibc-malloc-defaults') });
  if (typeof timer === 'string') throw new Error(timer);
  await timer.load(name, model, step.signature.parameters.map((p) => p.name), { input: { name: input, data: x.data as Float32Array, dims: x.dims }, labels: first.labels as BigInt64Array });
  return timer;
}
// `P` times with --python (default interpreter), `Q` with --python-b: an A/B of the child's setup.
const timers = { P: await startTimer(benchOption('--python')), Q: sequence.includes('Q') ? await startTimer(benchOption('--python-b')) : undefined };
const childStatus = (timer: PytorchStepTimer): string =>
  readFileSync(`/proc/${timer.pid}/status`, 'utf8').split('\n').filter((l) => /^(Threads|Cpus_allowed_list)/.test(l)).join(', ');
console.log(`child: ${childStatus(timers.P)}; OMP/BLAS env: ${readFileSync(`/proc/${timers.P.pid}/environ`, 'utf8').split('\0').filter((e) => /OMP|BLAS|MKL|GOMP|KMP/.test(e)).join(' ')}`);
for (const what of sequence) {
  const load = loadavg()[0]?.toFixed(2);
  if (what === 'O' || what === 'S') console.log(`${what} ours ${await ours(what === 'S')} (load ${load})`);
  else if (what === 'W') await new Promise((resolve) => setTimeout(resolve, 2000));
  else {
    const timer = what === 'Q' ? timers.Q : timers.P;
    if (timer === undefined) throw new Error('no timer');
    const nodeCpu = process.cpuUsage();
    const t = await timer.timeSteps(name, { threads, warmup: 5, steps: 50, maxSeconds: 20, lr: 0.01, momentum: 0.9 });
    const nodeMs = process.cpuUsage(nodeCpu);
    const sorted = [...t.stepMs].sort((a, b) => a - b);
    console.log(`${what} pytorch median ${t.stepMsMedian.toFixed(2)} min ${sorted[0]?.toFixed(2)} max ${sorted.at(-1)?.toFixed(2)} user/step ${t.userMsPerStep} sys/step ${t.systemMsPerStep} faults/step ${t.minorFaultsPerStep} invol/step ${t.involuntarySwitchesPerStep} vol/step ${t.voluntarySwitchesPerStep}; node cpu meanwhile ${((nodeMs.user + nodeMs.system) / 1000).toFixed(0)} ms over ${t.stepMs.reduce((a, b) => a + b, 0).toFixed(0)} ms (load ${load})`);
  }
}
await timers.P.close();
await timers.Q?.close();
