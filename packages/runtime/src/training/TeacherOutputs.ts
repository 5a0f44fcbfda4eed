import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, FileAccessError, ModelFormatError } from '@open-autoglm/core';
import type { OnnxModel, StepTensor, TrainingStepSignature } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import { exposeTensors } from '../activationOutputs.js';
import { createSession, type RuntimeSession, type TensorMap } from '../session.js';
import type { RuntimeTarget } from '../target.js';

/**
 * Where teacher outputs are kept between epochs. Caching is valid only when every epoch feeds
 * the same inputs for a sample (no data augmentation), which is how the Trainer feeds them.
 *
 * - `none`: the teacher runs on every batch of every epoch.
 * - `memory`: rows are kept in memory after the first epoch (N x row size x 4 bytes per tensor).
 * - `{ directory }`: rows are kept in files in a fresh folder under `directory`, deleted on release
 *   (for intermediate tensors too large for memory).
 */
export type TeacherCache = 'none' | 'memory' | { readonly directory: string };

/** The teacher of a distillation run (see `TrainerOptions.teacher`). */
export interface TeacherOptions {
  /** The teacher inference model; it runs in its own session on the same batches as the student. */
  readonly model: OnnxModel;
  /** Teacher tensor holding its logits; default its first output. */
  readonly logits?: string;
  /**
   * For each student tensor of the step's mse term, the teacher tensor it learns (any node
   * output of the teacher); a student tensor not listed reads the teacher tensor of the same name.
   */
  readonly features?: Readonly<Record<string, string>>;
  /** Default `memory`. */
  readonly cache?: TeacherCache;
}

interface TeacherTensor {
  /** The step input it feeds. */
  readonly stepInput: StepTensor;
  /** The teacher tensor (a graph output of the teacher session). */
  readonly teacherName: string;
  /** Store for the cached rows, made on the first batch (when the row size is known). */
  store: RowStore | undefined;
}

/**
 * The teacher's outputs for the Trainer's batches: the teacher model (with the intermediate
 * tensors the step learns exposed as outputs) runs in its own inference session, once per batch,
 * and its rows are cached per sample across epochs when asked.
 */
export class TeacherOutputs {
  private readonly filled: Uint8Array;
  private cacheFolder: string | undefined;

  private constructor(
    private readonly session: RuntimeSession,
    private readonly tensors: readonly TeacherTensor[],
    private readonly inputNames: ReadonlyMap<string, string>,
    private readonly cache: TeacherCache,
    private readonly samples: number,
    private readonly label: string,
  ) {
    this.filled = new Uint8Array(cache === 'none' ? 0 : samples);
  }

  /**
   * Opens the teacher's session for a step with teacher inputs. ConfigError when the step takes
   * none, or a teacher tensor is missing; ModelFormatError when the teacher's inputs do not
   * match the step's batch inputs.
   */
  static async create(teacher: TeacherOptions, signature: TrainingStepSignature, samples: number, target: RuntimeTarget): Promise<TeacherOutputs> {
    const label = teacher.model.source ?? 'the teacher model';
    const graph = teacher.model.graph;
    const logitsName = teacher.logits ?? graph.outputs[0]?.name;
    const wanted: { stepInput: StepTensor; teacherName: string }[] = [];
    if (signature.teacherLogits !== undefined) {
      if (logitsName === undefined) throw new ModelFormatError(`The teacher ${label} has no outputs to take logits from.`, { file: teacher.model.source });
      wanted.push({ stepInput: signature.teacherLogits, teacherName: logitsName });
    }
    for (const feature of signature.teacherFeatures) {
      wanted.push({ stepInput: feature, teacherName: teacher.features?.[feature.student] ?? feature.student });
    }
    if (wanted.length === 0) {
      throw new ConfigError('A teacher was given, but the training step takes no teacher outputs. Build the step with a distillation or mse loss term.');
    }
    const missing = wanted.filter((w) => graph.producerOf(w.teacherName) === undefined && !graph.outputs.some((o) => o.name === w.teacherName));
    if (missing.length > 0) {
      throw new ConfigError(
        `The teacher ${label} has no tensor ${missing.map((m) => `"${m.teacherName}"`).join(', ')} ` +
          `(wanted for student tensor ${missing.map((m) => ('student' in m.stepInput ? `"${String(m.stepInput.student)}"` : 'logits')).join(', ')}). ` +
          'Map each student tensor to a teacher tensor (features: { student: teacher }); autoglm inspect --layers lists the tensor names.',
        { file: teacher.model.source },
      );
    }
    const names = wanted.map((w) => w.teacherName);
    const exposed = names.every((name) => graph.outputs.some((o) => o.name === name)) ? teacher.model : exposeTensors(teacher.model, names);
    const inputNames = matchInputs(signature, exposed, label);
    const session = await createSession(exposed.toBytes(), target, { ...(teacher.model.source === undefined ? {} : { file: teacher.model.source }) });
    return new TeacherOutputs(
      session,
      wanted.map((w) => ({ ...w, store: undefined })),
      inputNames,
      teacher.cache ?? 'memory',
      samples,
      label,
    );
  }

  /**
   * The step's teacher inputs for the batch `inputs` (step batch input name -> tensor) holding
   * the samples `indices` of the training data.
   */
  async forBatch(inputs: TensorMap, indices: Uint32Array): Promise<TensorMap> {
    const cached = this.cache !== 'none' && indices.every((i) => this.filled[i] === 1);
    const result: TensorMap = {};
    if (cached) {
      for (const tensor of this.tensors) {
        const store = tensor.store as RowStore;
        const data = new Float32Array(indices.length * store.rowSize);
        await store.read(indices, data);
        result[tensor.stepInput.name] = new Tensor('float32', data, [indices.length, ...store.sampleDims]);
      }
      return result;
    }
    const feeds: TensorMap = {};
    for (const [stepInput, teacherInput] of this.inputNames) feeds[teacherInput] = inputs[stepInput] as Tensor;
    const outputs = await this.session.run(
      feeds,
      this.tensors.map((t) => t.teacherName),
    );
    for (const tensor of this.tensors) {
      const output = outputs[tensor.teacherName] as Tensor;
      this.checkShape(tensor, output, indices.length);
      if (this.cache !== 'none') {
        if (tensor.store !== undefined) this.checkSampleShape(tensor, tensor.store, output);
        tensor.store ??= await this.openStore(tensor, output);
        await tensor.store.write(indices, output.data as Float32Array);
      }
      result[tensor.stepInput.name] = output;
    }
    if (this.cache !== 'none') for (const i of indices) this.filled[i] = 1;
    return result;
  }

  /** Frees the session and deletes the cache files. */
  async release(): Promise<void> {
    await this.session.release();
    for (const tensor of this.tensors) await tensor.store?.close();
    if (this.cacheFolder !== undefined) await rm(this.cacheFolder, { recursive: true, force: true });
  }

  private checkShape(tensor: TeacherTensor, output: Tensor, batch: number): void {
    const expected = tensor.stepInput.dims;
    const fits =
      output.type === 'float32' &&
      output.dims.length === expected.length &&
      output.dims[0] === batch &&
      expected.every((d, axis) => axis === 0 || typeof d !== 'number' || d === output.dims[axis]);
    if (!fits) {
      const what = 'student' in tensor.stepInput ? `student tensor "${String(tensor.stepInput.student)}"` : 'the student\'s logits';
      throw new ModelFormatError(
        `The teacher ${this.label} gives "${tensor.teacherName}" as ${output.type}[${output.dims.join(', ')}] for a batch of ${batch}, ` +
          `but ${what} ${'student' in tensor.stepInput ? 'is' : 'are'} float32[${expected.join(', ')}]. ` +
          'Distill between tensors of the same shape: pick matching tensors, or add a projection to the student.',
        { file: this.label },
      );
    }
  }

  /**
   * The cache keeps one row size per teacher tensor, fixed by the first batch: a tensor whose
   * per-sample shape changes between batches (a sequence padded to each batch's longest) would
   * be written over its neighbours' rows and read back misshapen, so it is refused.
   */
  private checkSampleShape(tensor: TeacherTensor, store: RowStore, output: Tensor): void {
    const sampleDims = output.dims.slice(1);
    if (sampleDims.length === store.sampleDims.length && sampleDims.every((d, axis) => d === store.sampleDims[axis])) return;
    throw new ConfigError(
      `The teacher ${this.label} gives "${tensor.teacherName}" with per-sample shape [${sampleDims.join(', ')}] in this batch, ` +
        `but [${store.sampleDims.join(', ')}] in an earlier one: its cached rows have one fixed size and would be read back wrongly. ` +
        "Use teacher cache 'none' (the teacher then runs on every batch), or give the teacher inputs of one fixed shape (pad to a fixed length).",
    );
  }

  private async openStore(tensor: TeacherTensor, output: Tensor): Promise<RowStore> {
    const sampleDims = output.dims.slice(1);
    const rowSize = sampleDims.reduce((a, b) => a * b, 1);
    if (this.cache === 'memory' || this.cache === 'none') return new MemoryRowStore(this.samples, rowSize, sampleDims);
    if (this.cacheFolder === undefined) {
      try {
        this.cacheFolder = await mkdtemp(path.join(this.cache.directory, 'teacher-cache-'));
      } catch (error) {
        throw new FileAccessError(
          `Cannot create the teacher cache folder in ${this.cache.directory}: ${(error as Error).message}. Give a writable directory, or cache in memory.`,
          { cause: error, file: this.cache.directory },
        );
      }
    }
    const file = path.join(this.cacheFolder, `${this.tensors.indexOf(tensor)}.f32`);
    return new FileRowStore(await open(file, 'w+'), rowSize, sampleDims);
  }
}

/** Teacher input name for every step batch input: same name, or the only input of each. */
function matchInputs(signature: TrainingStepSignature, teacher: OnnxModel, label: string): Map<string, string> {
  const graph = teacher.graph;
  const initializers = new Set(graph.proto.initializer.map((t) => t.name));
  const teacherInputs = graph.inputs.map((i) => i.name).filter((name) => !initializers.has(name));
  const studentInputs = signature.batchInputs.map((i) => i.name);
  const map = new Map<string, string>();
  if (teacherInputs.length === 1 && studentInputs.length === 1) {
    map.set(studentInputs[0] as string, teacherInputs[0] as string);
    return map;
  }
  for (const name of teacherInputs) {
    if (!studentInputs.includes(name)) {
      throw new ModelFormatError(
        `The teacher ${label} takes inputs ${teacherInputs.join(', ')} but the student takes ${studentInputs.join(', ')}: ` +
          'a teacher must take the same inputs (by name) as the student it teaches.',
        { file: teacher.source },
      );
    }
    map.set(name, name);
  }
  return map;
}

interface RowStore {
  readonly rowSize: number;
  readonly sampleDims: readonly number[];
  write(indices: Uint32Array, rows: Float32Array): Promise<void>;
  read(indices: Uint32Array, target: Float32Array): Promise<void>;
  close(): Promise<void>;
}

class MemoryRowStore implements RowStore {
  private readonly data: Float32Array;
  constructor(
    samples: number,
    readonly rowSize: number,
    readonly sampleDims: readonly number[],
  ) {
    this.data = new Float32Array(samples * rowSize);
  }
  async write(indices: Uint32Array, rows: Float32Array): Promise<void> {
    indices.forEach((sample, r) => this.data.set(rows.subarray(r * this.rowSize, (r + 1) * this.rowSize), sample * this.rowSize));
  }
  async read(indices: Uint32Array, target: Float32Array): Promise<void> {
    indices.forEach((sample, r) => target.set(this.data.subarray(sample * this.rowSize, (sample + 1) * this.rowSize), r * this.rowSize));
  }
  async close(): Promise<void> {}
}

/** Rows at `sample * rowBytes` of one file, read and written in place. */
class FileRowStore implements RowStore {
  constructor(
    private readonly handle: FileHandle,
    readonly rowSize: number,
    readonly sampleDims: readonly number[],
  ) {}
  async write(indices: Uint32Array, rows: Float32Array): Promise<void> {
    const rowBytes = this.rowSize * 4;
    for (let r = 0; r < indices.length; r++) {
      const bytes = new Uint8Array(rows.buffer, rows.byteOffset + r * rowBytes, rowBytes);
      await this.handle.write(bytes, 0, rowBytes, (indices[r] as number) * rowBytes);
    }
  }
  async read(indices: Uint32Array, target: Float32Array): Promise<void> {
    const rowBytes = this.rowSize * 4;
    for (let r = 0; r < indices.length; r++) {
      const bytes = new Uint8Array(target.buffer, target.byteOffset + r * rowBytes, rowBytes);
      const { bytesRead } = await this.handle.read(bytes, 0, rowBytes, (indices[r] as number) * rowBytes);
      if (bytesRead !== rowBytes) throw new FileAccessError('The teacher cache file was truncated while training; do not touch the cache folder during a run.');
    }
  }
  async close(): Promise<void> {
    await this.handle.close();
  }
}
