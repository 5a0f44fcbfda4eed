import { clearField, create, isFieldSet } from '@bufbuild/protobuf';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, ExternalDataError } from '@open-autoglm/core';
import { subgraphsOf } from './OnnxGraph.js';
import {
  DataLocation,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  StringStringEntryProtoSchema,
  type TensorProto,
  TensorProtoSchema,
} from './proto.js';
import { dataTypeByteSize, dataTypeName, elementCount } from './tensor.js';

/** Where a tensor's data lives outside the model file (the `external_data` key/value pairs). */
export interface ExternalDataReference {
  /** Path of the data file, relative to the model's folder. */
  readonly location: string;
  /** Byte offset in the data file (0 when absent). */
  readonly offset: number;
  /** Byte length; undefined means "to the end of the file". */
  readonly length: number | undefined;
  /** SHA-1 digest, when the writer recorded one (kept in the file, not checked). */
  readonly checksum: string | undefined;
}

/** How `externalizeTensors` (and `OnnxModel.save`) lays out external data. */
export interface ExternalDataOptions {
  /** Name of the data file, placed next to the model. Default: the model's file name + `.data`. */
  readonly location?: string;
  /** Tensors whose data has at least this many bytes move to the data file. Default 1024, as onnx. */
  readonly sizeThreshold?: number;
  /** Every tensor starts at a multiple of this many bytes (lets readers map pages). Default 4096. */
  readonly alignment?: number;
}

export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 1024;
export const DEFAULT_EXTERNAL_DATA_ALIGNMENT = 4096;

/** Tensors of every graph in a model: initializers, sparse tensors, node attributes, subgraphs, functions, training. */
export function* modelTensors(model: ModelProto): Generator<TensorProto> {
  if (model.graph !== undefined) yield* graphTensors(model.graph);
  for (const fn of model.functions) for (const node of fn.node) yield* nodeTensors(node);
  for (const training of model.trainingInfo) {
    if (training.initialization !== undefined) yield* graphTensors(training.initialization);
    if (training.algorithm !== undefined) yield* graphTensors(training.algorithm);
  }
}

function* graphTensors(graph: GraphProto): Generator<TensorProto> {
  yield* graph.initializer;
  for (const sparse of graph.sparseInitializer) {
    if (sparse.values !== undefined) yield sparse.values;
    if (sparse.indices !== undefined) yield sparse.indices;
  }
  for (const node of graph.node) yield* nodeTensors(node);
}

function* nodeTensors(node: NodeProto): Generator<TensorProto> {
  for (const attribute of node.attribute) {
    if (attribute.t !== undefined) yield attribute.t;
    yield* attribute.tensors;
    for (const sparse of [attribute.sparseTensor, ...attribute.sparseTensors]) {
      if (sparse?.values !== undefined) yield sparse.values;
      if (sparse?.indices !== undefined) yield sparse.indices;
    }
  }
  for (const subgraph of subgraphsOf(node)) yield* graphTensors(subgraph);
}

/** Initializers of the main graph and of every subgraph: what gets moved out on save (as onnx does). */
function* initializerTensors(graph: GraphProto): Generator<TensorProto> {
  yield* graph.initializer;
  for (const node of graph.node) for (const subgraph of subgraphsOf(node)) yield* initializerTensors(subgraph);
}

/** True when a tensor's data is in another file and has not been read yet. */
export function hasExternalData(tensor: TensorProto): boolean {
  return tensor.dataLocation === DataLocation.EXTERNAL;
}

/**
 * The parsed `external_data` entries of a tensor. `modelPath` only names the file in errors.
 * Throws `ExternalDataError` for a missing location or a malformed offset or length.
 */
export function externalDataOf(tensor: TensorProto, modelPath: string): ExternalDataReference {
  const entries = new Map(tensor.externalData.map((entry) => [entry.key, entry.value]));
  const location = entries.get('location');
  if (location === undefined || location === '') {
    throw new ExternalDataError(
      `Model "${modelPath}": tensor "${tensor.name}" is marked as external data but has no "location". ` +
        'The model file is corrupt; re-export it.',
      { file: modelPath },
    );
  }
  const integer = (key: 'offset' | 'length'): number | undefined => {
    const text = entries.get(key);
    if (text === undefined) return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value)) {
      throw new ExternalDataError(
        `Model "${modelPath}": tensor "${tensor.name}" has external data ${key} "${text}", which is not a byte count. ` +
          'The model file is corrupt; re-export it.',
        { file: modelPath },
      );
    }
    return value;
  };
  return { location, offset: integer('offset') ?? 0, length: integer('length'), checksum: entries.get('checksum') };
}

/** An external data reference resolved to a file inside the model's folder. */
export interface ResolvedExternalData {
  readonly tensor: TensorProto;
  /** The location as written in the model. */
  readonly location: string;
  /** The absolute, link-resolved file it points to. */
  readonly file: string;
  readonly offset: number;
  readonly length: number | undefined;
}

/**
 * Resolves every external data reference of a model inside the model's folder, reading no data.
 * Refuses (ExternalDataError naming the model, tensor and location) absolute paths, `..` leaving
 * the folder and links resolving outside it. Callers that hand the model file to another loader
 * (onnxruntime) run this first, so that the same rules and messages apply everywhere.
 */
export async function resolveExternalData(model: ModelProto, modelPath: string): Promise<ResolvedExternalData[]> {
  const external = [...modelTensors(model)].filter(hasExternalData);
  if (external.length === 0) return [];
  const folder = await realFolderOf(modelPath);
  const resolved: ResolvedExternalData[] = [];
  for (const tensor of external) {
    const reference = externalDataOf(tensor, modelPath);
    const file = await resolveInside(folder, reference.location, tensor, modelPath);
    resolved.push({ tensor, location: reference.location, file, offset: reference.offset, length: reference.length });
  }
  return resolved;
}

/**
 * Reads the data of every tensor stored outside the model file into `raw_data` (and marks it
 * in-file), so tensor helpers work on it. Locations are resolved inside the model's folder;
 * absolute paths, `..` that leaves the folder, links that resolve outside it, missing files and
 * ranges past the end of a file are refused with an `ExternalDataError` naming the model, the
 * tensor and the location. Nothing is modified unless every tensor can be read.
 *
 * @returns the real paths of the data files that were read.
 */
export async function loadExternalData(model: ModelProto, modelPath: string): Promise<string[]> {
  const planned = await resolveExternalData(model, modelPath);
  if (planned.length === 0) return [];

  const byFile = new Map<string, typeof planned>();
  for (const item of planned) {
    const items = byFile.get(item.file);
    if (items === undefined) byFile.set(item.file, [item]);
    else items.push(item);
  }
  const loaded: { tensor: TensorProto; data: Uint8Array<ArrayBuffer> }[] = [];
  for (const [file, items] of byFile) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(file, 'r');
      const info = await handle.stat();
      const first = items[0];
      if (!info.isFile() && first !== undefined) {
        throw refusal(modelPath, first.tensor, first.location, `is not a regular file ("${file}")`, 'Point it to a data file.');
      }
      for (const { tensor, location, offset, length } of items) {
        const byteLength = length ?? info.size - offset;
        if (offset > info.size || byteLength < 0 || offset + byteLength > info.size) {
          throw refusal(
            modelPath,
            tensor,
            location,
            offset > info.size
              ? `starts at byte ${offset} but the file has only ${info.size} bytes`
              : `needs bytes ${offset} to ${offset + byteLength} but the file has only ${info.size} bytes`,
            'The data file is truncated or belongs to another model; copy the matching file or re-export the model.',
          );
        }
        const expected = expectedByteLength(tensor);
        if (expected !== undefined && expected !== byteLength) {
          throw refusal(
            modelPath,
            tensor,
            location,
            `holds ${byteLength} bytes but a ${dataTypeName(tensor.dataType)} tensor ` +
              `of shape [${tensor.dims.join(', ')}] needs ${expected}`,
            'The model and its data file do not match; re-export the model.',
          );
        }
        loaded.push({ tensor, data: await readRange(handle, offset, byteLength) });
      }
    } catch (error) {
      if (error instanceof ExternalDataError) throw error;
      throw new ExternalDataError(
        `Model "${modelPath}": cannot read external data file "${file}": ${(error as Error).message}. Check the file's permissions.`,
        { file: modelPath, cause: error },
      );
    } finally {
      await handle?.close();
    }
  }
  for (const { tensor, data } of loaded) {
    tensor.rawData = data;
    // onnx.proto is proto2: an explicit DEFAULT would still be written, so unset the field instead.
    clearField(tensor, TensorProtoSchema.field.dataLocation);
    tensor.externalData = [];
  }
  return [...byFile.keys()];
}

function expectedByteLength(tensor: TensorProto): number | undefined {
  const bytes = dataTypeByteSize(tensor.dataType);
  return bytes === undefined ? undefined : elementCount(tensor.dims) * bytes;
}

async function readRange(handle: FileHandle, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const data = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(data, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return data;
}

async function realFolderOf(modelPath: string): Promise<string> {
  const folder = path.dirname(path.resolve(modelPath));
  try {
    return await realpath(folder);
  } catch (error) {
    throw new ExternalDataError(`Model "${modelPath}": its folder cannot be resolved (${(error as Error).message}).`, {
      file: modelPath,
      cause: error,
    });
  }
}

/** The real path of a data file, refusing anything that is not inside the model's (real) folder. */
async function resolveInside(folder: string, location: string, tensor: TensorProto, modelPath: string): Promise<string> {
  const fix = 'External data must be a file in the model\'s own folder; move it there and re-save the model with a relative location.';
  if (location.includes('\u0000')) throw refusal(modelPath, tensor, location, 'contains a NUL character', fix);
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location) || /^[A-Za-z]:/.test(location)) {
    throw refusal(modelPath, tensor, location, 'is an absolute path', fix);
  }
  // Backslashes count as separators too: a file written on Windows must not escape on Linux either.
  const candidate = path.resolve(folder, ...location.split(/[\\/]+/));
  if (!isInside(folder, candidate)) throw refusal(modelPath, tensor, location, 'points outside the model\'s folder', fix);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw refusal(
      modelPath,
      tensor,
      location,
      missing ? `does not exist (looked for "${candidate}")` : `cannot be resolved (${(error as Error).message})`,
      missing ? 'Copy the data file next to the model file.' : 'Check the file and its permissions.',
      error,
    );
  }
  if (!isInside(folder, real)) {
    throw refusal(modelPath, tensor, location, `is a link that resolves to "${real}", outside the model's folder`, fix);
  }
  return real;
}

function isInside(folder: string, candidate: string): boolean {
  const relative = path.relative(folder, candidate);
  return relative !== '' && relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}

function refusal(
  modelPath: string,
  tensor: TensorProto,
  location: string,
  reason: string,
  fix: string,
  cause?: unknown,
): ExternalDataError {
  return new ExternalDataError(
    `Model "${modelPath}": external data of tensor "${tensor.name}" at "${location}" ${reason}. ${fix}`,
    { file: modelPath, cause },
  );
}

/** The outcome of `externalizeTensors`: the data file to write and a way to put the model back. */
export interface ExternalizedTensors {
  /** Absolute path of the data file. */
  readonly dataPath: string;
  /** The data file's content, in order (tensor data and alignment padding). */
  readonly chunks: readonly Uint8Array[];
  readonly tensorCount: number;
  readonly byteLength: number;
  /** Puts the moved tensors back in-file, undoing the change to the model. */
  restore(): void;
}

/**
 * Points every initializer (main graph and subgraphs) whose `raw_data` has at least
 * `sizeThreshold` bytes at a data file next to `modelPath`, at aligned offsets, and empties its
 * `raw_data`. Serialize the model, then call `restore()` and write the chunks. Returns undefined
 * when no tensor is large enough (then no data file is needed).
 */
export function externalizeTensors(
  model: ModelProto,
  modelPath: string,
  options: ExternalDataOptions = {},
): ExternalizedTensors | undefined {
  const location = options.location ?? `${path.basename(modelPath)}.data`;
  const threshold = options.sizeThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD;
  const alignment = options.alignment ?? DEFAULT_EXTERNAL_DATA_ALIGNMENT;
  if (location === '' || location === '.' || location === '..' || /[\\/\u0000]/.test(location) || location === path.basename(modelPath)) {
    throw new ConfigError(
      `External data location "${location}" for "${modelPath}" must be a plain file name, different from the model's. ` +
        'Use e.g. "model.onnx.data"; the file is always written next to the model.',
    );
  }
  if (!Number.isSafeInteger(threshold) || threshold < 0 || !Number.isSafeInteger(alignment) || alignment < 1) {
    throw new ConfigError(
      `External data options for "${modelPath}": sizeThreshold (${threshold}) must be an integer >= 0 ` +
        `and alignment (${alignment}) an integer >= 1.`,
    );
  }
  if (model.graph === undefined) return undefined;
  const moved = [...initializerTensors(model.graph)].filter(
    (tensor) => tensor.dataLocation !== DataLocation.EXTERNAL && tensor.rawData.length > 0 && tensor.rawData.length >= threshold,
  );
  if (moved.length === 0) return undefined;

  const chunks: Uint8Array[] = [];
  const saved = moved.map((tensor) => ({
    tensor,
    rawData: tensor.rawData,
    externalData: tensor.externalData,
    dataLocation: isFieldSet(tensor, TensorProtoSchema.field.dataLocation) ? tensor.dataLocation : undefined,
  }));
  let position = 0;
  for (const tensor of moved) {
    const offset = Math.ceil(position / alignment) * alignment;
    if (offset > position) chunks.push(new Uint8Array(offset - position));
    chunks.push(tensor.rawData);
    const length = tensor.rawData.length;
    position = offset + length;
    tensor.externalData = [
      create(StringStringEntryProtoSchema, { key: 'location', value: location }),
      create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
      create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
    ];
    tensor.dataLocation = DataLocation.EXTERNAL;
    clearField(tensor, TensorProtoSchema.field.rawData);
  }
  return {
    dataPath: path.join(path.dirname(path.resolve(modelPath)), location),
    chunks,
    tensorCount: moved.length,
    byteLength: position,
    restore(): void {
      for (const { tensor, rawData, externalData, dataLocation } of saved) {
        tensor.rawData = rawData;
        tensor.externalData = externalData;
        if (dataLocation === undefined) clearField(tensor, TensorProtoSchema.field.dataLocation);
        else tensor.dataLocation = dataLocation;
      }
    },
  };
}
