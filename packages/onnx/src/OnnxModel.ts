import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { ExternalDataError, FileAccessError, ModelFormatError } from '@open-autoglm/core';
import { type AtomicFile, writeFilesAtomic } from './writeFileAtomic.js';
import {
  type ExternalDataOptions,
  externalDataOf,
  externalizeTensors,
  hasExternalData,
  loadExternalData,
  modelTensors,
} from './externalData.js';
import { isDefaultDomain, OnnxGraph } from './OnnxGraph.js';
import { findModelProblems } from './findModelProblems.js';
import { type ModelProto, ModelProtoSchema, OperatorSetIdProtoSchema } from './proto.js';

/** Options of `OnnxModel.save`. */
export interface SaveModelOptions {
  /**
   * Move large initializers to one data file next to the model (`true` for the defaults, or
   * options). Without it every tensor is stored in the model file.
   */
  readonly externalData?: boolean | ExternalDataOptions;
  /** Allow writing over the file (or data file) the model was loaded from. Default false. */
  readonly overwriteInput?: boolean;
  /**
   * Refuse to write a model with structural problems (see `findModelProblems`), which could not
   * be loaded back. Default true; turn off only to inspect a broken model.
   */
  readonly validate?: boolean;
}

/**
 * One ONNX model, wrapping its `ModelProto` (`proto`). Everything the file holds is kept as
 * decoded, including fields this schema does not know, so a load/save round trip is lossless.
 */
export class OnnxModel {
  /** The file this model was read from, used in messages; undefined for models built in memory. */
  readonly source: string | undefined;
  /** Real paths of the files this model was read from (model and external data), never overwritten by default. */
  private inputFiles: ReadonlySet<string> = new Set();
  private graphView: OnnxGraph | undefined;

  /** Wraps a `ModelProto` as is (no validation; see `findModelProblems`). */
  constructor(
    readonly proto: ModelProto,
    options: { readonly source?: string } = {},
  ) {
    this.source = options.source;
  }

  /**
   * Decodes and validates a model. Anything that is not a usable ONNX model (empty, truncated,
   * random bytes, a text file, a graph reading undefined names, ...) throws one
   * `ModelFormatError` naming `source` (the file, for messages). External data is not read; see
   * `load` or `loadExternalData`. Tensor `raw_data` are views into `bytes` (no copy), so do not
   * reuse that buffer while the model lives.
   */
  static fromBytes(bytes: Uint8Array, options: { readonly source?: string } = {}): OnnxModel {
    const source = options.source;
    const notAModel = (reason: string, fix: string, cause?: unknown): ModelFormatError =>
      new ModelFormatError(
        `${source === undefined ? 'The data' : `File "${source}"`} is not a valid ONNX model: ${reason}. ${fix}`,
        { file: source, cause },
      );
    if (bytes.length === 0) throw notAModel('it is empty', 'Check the path, or re-export the model.');
    if (startsWithText(bytes, 'version https://git-lfs')) {
      throw notAModel('it is a Git LFS pointer, not the model itself', 'Run "git lfs pull" to fetch the real file.');
    }
    const otherFormat = recognizeOtherFormat(bytes);
    if (otherFormat !== undefined) throw notAModel(`it is ${otherFormat}`, 'Check the path: it must point to an .onnx file.');
    let proto: ModelProto;
    try {
      proto = fromBinary(ModelProtoSchema, bytes);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw notAModel(
        `it cannot be decoded as ONNX protobuf (${detail})`,
        'The file is truncated or not a model: check the path, or re-export the model.',
        error,
      );
    }
    const problems = findModelProblems(proto);
    const first = problems[0];
    if (first !== undefined) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
      throw notAModel(`${first}${more}`, 'Check the path, or re-export the model from its framework.');
    }
    return new OnnxModel(proto, { source });
  }

  /**
   * Reads a model file and its external data (resolved inside the model's folder; see
   * `loadExternalData`). A missing or unreadable file throws `FileAccessError` naming it.
   */
  static async load(filePath: string): Promise<OnnxModel> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(filePath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT'
          ? 'does not exist. Check the path'
          : code === 'EISDIR'
            ? 'is a folder. Pass the path of the .onnx file inside it'
            : `cannot be read (${code ?? (error as Error).message}). Check the file's permissions`;
      throw new FileAccessError(`Model file "${filePath}" ${reason}.`, { file: filePath, cause: error });
    }
    const model = OnnxModel.fromBytes(bytes, { source: filePath });
    const dataFiles = await loadExternalData(model.proto, filePath);
    model.inputFiles = new Set([await realpath(filePath), ...dataFiles]);
    return model;
  }

  /** The main graph, as a live view (see `OnnxGraph`). */
  get graph(): OnnxGraph {
    const proto = this.proto.graph;
    if (proto === undefined) {
      throw new ModelFormatError(`Model ${this.source === undefined ? '' : `"${this.source}" `}has no graph. Re-export the model.`, {
        file: this.source,
      });
    }
    if (this.graphView?.proto !== proto) this.graphView = new OnnxGraph(proto);
    return this.graphView;
  }

  /** The imported opset version of a domain ('' and 'ai.onnx' are the same), or undefined. */
  opsetVersion(domain = ''): number | undefined {
    const entry = this.proto.opsetImport.find((opset) => sameDomain(opset.domain, domain));
    return entry === undefined ? undefined : Number(entry.version);
  }

  /** Sets the imported version of a domain, adding the import when missing. */
  setOpsetVersion(version: number, domain = ''): void {
    const entry = this.proto.opsetImport.find((opset) => sameDomain(opset.domain, domain));
    if (entry !== undefined) entry.version = BigInt(version);
    else this.proto.opsetImport.push(create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
  }

  /** Structural problems of the model as it stands now (empty when valid); see `findModelProblems`. */
  problems(): string[] {
    return findModelProblems(this.proto);
  }

  /**
   * Reads external tensor data into memory, resolving locations inside the folder of
   * `modelPath` (by default the file the model came from). Needed only after `fromBytes`.
   */
  async loadExternalData(modelPath: string | undefined = this.source): Promise<void> {
    if (modelPath === undefined) {
      if (![...modelTensors(this.proto)].some(hasExternalData)) return;
      throw new ExternalDataError(
        'This model keeps tensors in external data files, but it was built from bytes without a path. ' +
          'Pass the path of the model file to loadExternalData(modelPath).',
      );
    }
    const dataFiles = await loadExternalData(this.proto, modelPath);
    this.inputFiles = new Set([...this.inputFiles, ...dataFiles]);
  }

  /** The model as ONNX bytes (external data references are written as they are). */
  toBytes(): Uint8Array {
    return toBinary(ModelProtoSchema, this.proto);
  }

  /**
   * Writes the model atomically (see `writeFileAtomic`): a reader never sees a partial file,
   * and a failure leaves any previous file in place. With `externalData`, large initializers go
   * to one data file next to the model, written before the model. Refuses to overwrite the
   * files the model was loaded from unless `overwriteInput` is set, and refuses to save a model
   * whose external data was never loaded or that has structural problems (see `validate`).
   */
  async save(filePath: string, options: SaveModelOptions = {}): Promise<void> {
    if (options.validate !== false) {
      const problems = findModelProblems(this.proto);
      if (problems.length > 0) {
        throw new ModelFormatError(
          `Cannot save "${filePath}": the model is no longer valid ONNX: ${problems.slice(0, 3).join('; ')}` +
            `${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}. ` +
            'An edit left the graph inconsistent; fix it, or pass { validate: false } to write it anyway for inspection.',
          { file: filePath },
        );
      }
    }
    const unloaded = [...modelTensors(this.proto)].find(hasExternalData);
    if (unloaded !== undefined) {
      const where = this.source ?? filePath;
      throw new ExternalDataError(
        `Cannot save to "${filePath}": tensor "${unloaded.name}" still refers to external data ` +
          `"${externalDataOf(unloaded, where).location}" that was never read, and would be lost. ` +
          'Load the model with OnnxModel.load(path), or call model.loadExternalData(modelPath) first.',
        { file: this.source },
      );
    }
    const externalOptions = options.externalData === true ? {} : options.externalData || undefined;
    const externalized = externalOptions === undefined ? undefined : externalizeTensors(this.proto, filePath, externalOptions);
    let bytes: Uint8Array;
    try {
      bytes = this.toBytes();
    } finally {
      externalized?.restore();
    }
    const files: AtomicFile[] = [];
    if (externalized !== undefined) files.push({ path: externalized.dataPath, data: externalized.chunks });
    files.push({ path: filePath, data: bytes });
    if (options.overwriteInput !== true) for (const file of files) await this.refuseInputOverwrite(file.path);
    await writeFilesAtomic(files);
  }

  /** A deep copy (same source; it also refuses to overwrite the original's files). */
  clone(): OnnxModel {
    const copy = new OnnxModel(clone(ModelProtoSchema, this.proto), { source: this.source });
    copy.inputFiles = this.inputFiles;
    return copy;
  }

  private async refuseInputOverwrite(filePath: string): Promise<void> {
    const resolved = path.resolve(filePath);
    const real = await realpath(resolved).catch(() => resolved);
    if (this.inputFiles.has(real)) {
      throw new FileAccessError(
        `Refusing to overwrite "${filePath}": this model was loaded from it. ` +
          'Save to another path, or pass { overwriteInput: true } to replace it.',
        { file: filePath },
      );
    }
  }
}

/** Reads a model file and its external data; shorthand for `OnnxModel.load`. */
export function loadModel(filePath: string): Promise<OnnxModel> {
  return OnnxModel.load(filePath);
}

function sameDomain(a: string, b: string): boolean {
  return a === b || (isDefaultDomain(a) && isDefaultDomain(b));
}

function startsWithText(bytes: Uint8Array, prefix: string): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** What a file recognisably is when it is not ONNX (by magic bytes), or undefined. */
function recognizeOtherFormat(bytes: Uint8Array): string | undefined {
  if (startsWithText(bytes, '\x93NUMPY')) return 'a NumPy .npy array';
  if (startsWithText(bytes, 'PK\x03\x04')) return 'a ZIP archive (a PyTorch checkpoint or .npz?); export PyTorch models with torch.onnx.export';
  if (startsWithText(bytes, '\x89HDF')) return 'an HDF5 file (a Keras model?); convert it to ONNX first';
  if (startsWithText(bytes.subarray(4), 'TFL3')) return 'a TensorFlow Lite model; convert it to ONNX first';
  if (looksLikeText(bytes)) return 'a text file';
  return undefined;
}

/** True when the first bytes are (nearly) all printable ASCII or whitespace, as in a text file. */
function looksLikeText(bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, 512);
  let printable = 0;
  for (const byte of sample) if ((byte >= 32 && byte < 127) || byte === 9 || byte === 10 || byte === 13) printable++;
  return sample.length > 0 && printable / sample.length > 0.95;
}
