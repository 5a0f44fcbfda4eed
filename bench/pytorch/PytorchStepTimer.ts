/**
 * The PyTorch side of `npm run bench:train`: one long-lived `train_speed.py` process that times
 * PyTorch's training step for the same ONNX graphs our engine trains, on request, so the bench
 * can interleave the two (ours, PyTorch, ours, PyTorch) and machine noise hits both alike.
 *
 * The Python interpreter is `--python <path>` on the bench's command line, else
 * `/usr/bin/python3` when it exists (Debian's python3-torch installs for it), else `python3`.
 * `PytorchStepTimer.start` resolves to the reason instead of a timer when torch cannot be
 * imported, and the bench falls back to the manifest figures.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type AttributeProto, AttributeType, dataTypeName, type OnnxModel, type TensorProto, tensorDims, tensorToArray } from '@open-autoglm/onnx';

const script = join(dirname(fileURLToPath(import.meta.url)), 'train_speed.py');

/** A tensor as the Python side decodes it: little-endian bytes in base64. */
interface EncodedTensor {
  readonly dims: readonly number[];
  readonly dtype: string;
  readonly data: string;
}

type ArrayData = Float32Array | BigInt64Array | Int32Array | Uint8Array | Float64Array;

function encodeArray(data: ArrayData, dims: readonly number[], dtype: string): EncodedTensor {
  return { dims, dtype, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
}

function encodeTensor(tensor: TensorProto): EncodedTensor {
  const array = tensorToArray(tensor) as ArrayData;
  return encodeArray(array, tensorDims(tensor), dataTypeName(tensor.dataType));
}

function encodeAttribute(attribute: AttributeProto): unknown {
  switch (attribute.type) {
    case AttributeType.INT:
      return Number(attribute.i);
    case AttributeType.FLOAT:
      return attribute.f;
    case AttributeType.INTS:
      return attribute.ints.map(Number);
    case AttributeType.FLOATS:
      return [...attribute.floats];
    case AttributeType.STRING:
      return new TextDecoder().decode(attribute.s);
    case AttributeType.TENSOR:
      return attribute.t === undefined ? null : encodeTensor(attribute.t);
    default:
      throw new Error(`attribute ${attribute.name} of type ${AttributeType[attribute.type]} has no encoding for bench/pytorch/train_speed.py`);
  }
}

/** One batch of the model's single input, with its class labels. */
export interface TimerBatch {
  readonly input: { readonly name: string; readonly data: Float32Array | BigInt64Array; readonly dims: readonly number[] };
  readonly labels: BigInt64Array;
}

export interface PytorchTiming {
  readonly threads: number;
  readonly warmup: number;
  readonly steps: number;
  readonly maxSeconds: number;
  readonly lr: number;
  readonly momentum: number;
}

/** One timed repeat of PyTorch's step, with what the Python process saw while it ran. */
export interface PytorchStepTiming {
  readonly stepMsMedian: number;
  readonly stepMs: readonly number[];
  /** User CPU time per timed step (all threads): above the wall time means threads busy-wait. */
  readonly userMsPerStep: number;
  /** Kernel CPU time per timed step: page faults of freshly mapped memory land here. */
  readonly systemMsPerStep: number;
  readonly minorFaultsPerStep: number;
  /** Preemptions per step: other processes (or our own threads) competing for the cores. */
  readonly involuntarySwitchesPerStep: number;
  readonly voluntarySwitchesPerStep: number;
}

/**
 * glibc malloc settings that keep freed memory in the process: no mmap/munmap per large tensor,
 * no trimming of the heap. With glibc's defaults PyTorch hands its activations back to the kernel
 * every step and touches fresh pages the next one: 780-900 page faults per LeNet-5 step here,
 * ~20 us each on this VM (whose freed memory goes back to the host), and their cost varies with
 * what else runs: likely the "3x slower inside the bench" of an earlier run. What jemalloc/tcmalloc do
 * for PyTorch in its CPU performance guide; onnxruntime's arena does the same on our side.
 */
const KEEP_FREED_MEMORY = 'glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296';

/** How the Python process is started. */
export interface PytorchProcessOptions {
  /** Keep freed memory in the process (default true; see KEEP_FREED_MEMORY). */
  readonly keepFreedMemory?: boolean;
  /** OMP_WAIT_POLICY of the process; unset = libgomp's default (idle threads spin a while). */
  readonly ompWaitPolicy?: 'ACTIVE' | 'PASSIVE';
}

interface Reply extends Partial<PytorchStepTiming> {
  readonly ok: boolean;
  readonly error?: string;
  readonly torch?: string;
  readonly blas?: string;
}

export class PytorchStepTimer {
  private readonly lines: AsyncIterator<string>;
  private readonly directory = mkdtempSync(join(tmpdir(), 'autoglm-bench-pytorch-'));
  /** torch.__version__ of the Python side. */
  torchVersion = 'unknown';
  /** The BLAS behind PyTorch's matrix products (the reference BLAS makes Linear/MatMul slow). */
  blas = 'unknown';

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    reader: Interface,
    readonly python: string,
    /** The variables this harness set in the Python process's environment. */
    readonly environment: Readonly<Record<string, string>>,
  ) {
    this.lines = reader[Symbol.asyncIterator]();
  }

  /** Starts the Python side; resolves to a string saying why when torch is not usable. */
  static async start(python?: string, options: PytorchProcessOptions = {}): Promise<PytorchStepTimer | string> {
    const interpreter = python ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    // The manifest's recipe: OpenBLAS single-threaded so it does not oversubscribe OpenMP's threads.
    const environment: Record<string, string> = { OPENBLAS_NUM_THREADS: '1' };
    if (options.keepFreedMemory ?? true) {
      const inherited = process.env['GLIBC_TUNABLES'];
      environment['GLIBC_TUNABLES'] = inherited === undefined ? KEEP_FREED_MEMORY : `${inherited}:${KEEP_FREED_MEMORY}`;
    }
    if (options.ompWaitPolicy !== undefined) environment['OMP_WAIT_POLICY'] = options.ompWaitPolicy;
    const child = spawn(interpreter, [script], { env: { ...process.env, ...environment }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const spawned = await new Promise<string | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (error) => resolve(`${interpreter} could not be started (${error.message})`));
    });
    if (spawned !== undefined) return spawned;
    const timer = new PytorchStepTimer(child, createInterface({ input: child.stdout }), interpreter, environment);
    const probe = await timer.request({ cmd: 'probe' }).catch((error: unknown): Reply => ({ ok: false, error: `${String(error)} ${stderr}` }));
    if (!probe.ok || probe.torch === undefined) {
      await timer.close();
      return probe.error ?? 'no reason given';
    }
    timer.torchVersion = probe.torch;
    timer.blas = probe.blas ?? 'unknown';
    return timer;
  }

  private async request(message: Record<string, unknown>): Promise<Reply> {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
    const line = await this.lines.next();
    if (line.done === true) throw new Error(`${this.python} ${script} exited before answering ${String(message['cmd'])}`);
    return JSON.parse(line.value) as Reply;
  }

  /**
   * Hands the inference graph (nodes, initializers, which of them are trained) and one batch to
   * PyTorch under `id`.
   */
  async load(id: string, model: OnnxModel, trained: readonly string[], batch: TimerBatch): Promise<void> {
    const graph = model.graph;
    const output = graph.outputs[0]?.name;
    if (output === undefined) throw new Error(`model ${id} has no output`);
    const description = {
      output,
      trained,
      initializers: Object.fromEntries(graph.initializers.map((t) => [t.name, encodeTensor(t)])),
      nodes: graph.nodes.map((n) => ({
        op: n.opType,
        inputs: n.input,
        outputs: n.output,
        attributes: Object.fromEntries(n.attribute.map((a) => [a.name, encodeAttribute(a)])),
      })),
      batch: { [batch.input.name]: encodeArray(batch.input.data, batch.input.dims, batch.input.data instanceof Float32Array ? 'float32' : 'int64') },
      labels: encodeArray(batch.labels, [batch.labels.length], 'int64'),
    };
    const file = join(this.directory, `${id}.json`);
    writeFileSync(file, JSON.stringify(description));
    const reply = await this.request({ cmd: 'load', id, file });
    if (!reply.ok) throw new Error(`PyTorch could not load ${id}: ${reply.error ?? 'no reason given'}`);
  }

  /**
   * Step times (ms) of `steps` SGD updates after `warmup`, with `threads` torch threads, and their
   * median; timing stops early after `maxSeconds` once 10 steps are timed.
   */
  async timeSteps(id: string, options: PytorchTiming): Promise<PytorchStepTiming> {
    const { ok, error, torch: _torch, blas: _blas, ...timing } = await this.request({ cmd: 'time', id, ...options });
    if (!ok || timing.stepMsMedian === undefined) throw new Error(`PyTorch could not time ${id}: ${error ?? 'no reason given'}`);
    return timing as PytorchStepTiming;
  }

  /** The Python process's id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    await new Promise((resolve) => (this.child.exitCode === null ? this.child.once('exit', resolve) : resolve(undefined)));
    rmSync(this.directory, { recursive: true, force: true });
  }
}
