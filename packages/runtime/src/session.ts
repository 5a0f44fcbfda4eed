import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FileAccessError, RuntimeExecutionError, UnsupportedOperationError } from '@open-autoglm/core';
import { fromBinary } from '@bufbuild/protobuf';
import { type ModelProto, ModelProtoSchema, resolveExternalData } from '@open-autoglm/onnx';
import { InferenceSession, type Tensor } from 'onnxruntime-node';
import {
  availableExecutionProviders,
  type ResolvedRuntimeTarget,
  resolveRuntimeTarget,
  type RuntimeTarget,
  sessionOptionsForTarget,
} from './target.js';

/** A model given as its serialized bytes or as the path of an .onnx file. */
export type ModelSource = Uint8Array | string;

/** Tensors fed to or returned by a session, by name. */
export type TensorMap = Record<string, Tensor>;

/** Name, element type and shape of a tensor input or output (symbolic dims as strings). */
export interface TensorSignature {
  readonly name: string;
  readonly type: Tensor.Type;
  readonly shape: ReadonlyArray<number | string>;
}

export interface CreateSessionOptions {
  /**
   * For a model given as bytes: the file they came from (or a description of it). It is named in
   * error messages, and its folder is where onnxruntime looks for external data.
   */
  file?: string;
}

/**
 * An onnxruntime session with the target it runs on. Failures of `run` are RuntimeExecutionErrors
 * naming the model. `run` blocks the event loop for the whole inference (onnxruntime-node runs it
 * synchronously inside the promise).
 */
export class RuntimeSession {
  /** The model file, or the description given for in-memory bytes; used in messages. */
  readonly modelLabel: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];

  constructor(
    /** The underlying onnxruntime-node session, for anything this wrapper does not cover. */
    readonly inferenceSession: InferenceSession,
    readonly target: ResolvedRuntimeTarget,
    readonly modelFile: string | undefined,
  ) {
    this.modelLabel = modelFile ?? 'in-memory model';
    this.inputs = tensorSignatures(inferenceSession.inputMetadata, 'input', this.modelLabel, modelFile);
    this.outputs = tensorSignatures(inferenceSession.outputMetadata, 'output', this.modelLabel, modelFile);
  }

  get inputNames(): readonly string[] {
    return this.inferenceSession.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inferenceSession.outputNames;
  }

  /** Runs the model; `outputNames` restricts which graph outputs are computed and copied back. */
  async run(feeds: TensorMap, outputNames?: readonly string[]): Promise<TensorMap> {
    try {
      const result =
        outputNames === undefined
          ? await this.inferenceSession.run(feeds)
          : await this.inferenceSession.run(feeds, outputNames);
      return result as TensorMap;
    } catch (error) {
      const given = Object.entries(feeds)
        .map(([name, t]) => `${name}: ${t.type}[${t.dims.join(', ')}]`)
        .join('; ');
      const expected = this.inputs.map((s) => `${s.name}: ${s.type}[${s.shape.join(', ')}]`).join('; ');
      throw new RuntimeExecutionError(
        `Inference failed for model ${this.modelLabel}: ${messageOf(error)}. ` +
          `Inputs given: ${given || 'none'}; the model expects: ${expected}. ` +
          'Check that the data matches the model (shape, element type, value range such as token ids).',
        { cause: error, file: this.modelFile },
      );
    }
  }

  /** Frees the native session. The object must not be used afterwards. */
  async release(): Promise<void> {
    await this.inferenceSession.release();
  }
}

function tensorSignatures(
  metadata: readonly InferenceSession.ValueMetadata[],
  kind: 'input' | 'output',
  modelLabel: string,
  modelFile: string | undefined,
): TensorSignature[] {
  return metadata.map((m) => {
    if (!m.isTensor) {
      throw new UnsupportedOperationError(
        `Model ${modelLabel} has a non-tensor ${kind} "${m.name}" (a sequence or map). ` +
          'Only models whose inputs and outputs are tensors are supported; export the model with tensor outputs.',
        { file: modelFile },
      );
    }
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

/**
 * Creates an onnxruntime session for a model file or serialized model on a target. A path is
 * handed to onnxruntime as a path, so external data next to the model is found.
 */
export async function createSession(
  model: ModelSource,
  target: RuntimeTarget,
  options: CreateSessionOptions = {},
): Promise<RuntimeSession> {
  const resolved = resolveRuntimeTarget(target);
  const file = typeof model === 'string' ? model : options.file;
  if (typeof model === 'string') await checkReadableFile(model);
  if (file !== undefined) await checkExternalData(model, file);
  const sessionOptions = sessionOptionsForTarget(
    resolved,
    typeof model === 'string' || file === undefined ? {} : { externalDataFolder: path.dirname(path.resolve(file)) },
  );
  let inferenceSession: InferenceSession;
  try {
    inferenceSession =
      typeof model === 'string'
        ? await InferenceSession.create(model, sessionOptions)
        : await InferenceSession.create(model, sessionOptions);
  } catch (error) {
    throw new RuntimeExecutionError(
      `onnxruntime could not load model ${file ?? '(in-memory model)'} on ${describeTarget(resolved)}: ` +
        `${messageOf(error)}. ${creationHint(resolved)}`,
      { cause: error, file },
    );
  }
  try {
    return new RuntimeSession(inferenceSession, resolved, file);
  } catch (error) {
    await inferenceSession.release();
    throw error;
  }
}

/**
 * Applies @open-autoglm/onnx's external-data rules (data confined to the model's folder) before
 * onnxruntime reads anything, so every loader refuses the same files with the same message.
 * Bytes that do not decode are left to onnxruntime, which names the problem.
 */
async function checkExternalData(model: ModelSource, file: string): Promise<void> {
  const bytes = typeof model === 'string' ? await readFile(model) : model;
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch {
    return;
  }
  await resolveExternalData(proto, file);
}

async function checkReadableFile(file: string): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await stat(file)).isFile();
  } catch (error) {
    throw fileAccessError(file, error);
  }
  if (!isFile) {
    throw new FileAccessError(`Model path ${file} is not a file. Give the path of an .onnx file.`, { file });
  }
}

function fileAccessError(file: string, error: unknown): FileAccessError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'does not exist' : `cannot be read (${messageOf(error)})`;
  return new FileAccessError(`Model file ${file} ${reason}. Check the path and its permissions.`, {
    cause: error,
    file,
  });
}

function describeTarget(target: ResolvedRuntimeTarget): string {
  const providers = target.executionProviders.join(', ');
  return `${target.device} (providers ${providers}, ${target.threads} thread(s), optimization ${target.optimizationLevel})`;
}

function creationHint(target: ResolvedRuntimeTarget): string {
  const unbundled = availableExecutionProviders()
    .filter((p) => !p.bundled && target.executionProviders.includes(p.name))
    .map((p) => p.name);
  if (unbundled.length > 0) {
    return (
      `onnxruntime-node does not carry the ${unbundled.join(', ')} provider libraries: its install script ` +
      'downloads them (skipped when ONNXRUNTIME_NODE_INSTALL=skip) and they need the vendor runtime (e.g. CUDA 12). ' +
      'Install them, or use device "cpu".'
    );
  }
  if (target.device !== 'cpu') {
    return `Check that the ${target.device} device and its drivers are present, or use device "cpu".`;
  }
  return (
    'Check that the file is a complete ONNX model (re-export it if it is truncated) ' +
    'and that its opset is supported by onnxruntime 1.30.'
  );
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.trim().replace(/[.\s]+$/, '');
}
