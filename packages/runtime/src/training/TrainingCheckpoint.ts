import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { FileAccessError, ModelFormatError, type SeededRandomState } from '@open-autoglm/core';
import { type TensorArray, writeFileAtomic } from '@open-autoglm/onnx';

/** Element types a checkpoint stores (what training-step tensors use). */
export type CheckpointTensorType = 'float32' | 'float64' | 'int32' | 'int64';

/** One named tensor of a checkpoint. */
export interface CheckpointTensor {
  readonly type: CheckpointTensorType;
  readonly dims: readonly number[];
  readonly data: TensorArray;
}

/** Where a run stands: what has been done, so a resumed run continues with the next batch. */
export interface TrainingPosition {
  /** Optimizer updates done so far (the next update is number `step + 1`). */
  readonly step: number;
  /** The epoch in progress, 0-based (equal to the epoch count when training is complete). */
  readonly epoch: number;
  /** Batches of `epoch` already trained. */
  readonly batchInEpoch: number;
}

/** What the epoch in progress has measured so far, so its summary stays right across a resume. */
export interface EpochTotals {
  /** Sum over its updates of loss * batch size. */
  readonly lossSum: number;
  readonly correct: number;
  readonly samples: number;
  readonly seconds: number;
}

/** What one finished epoch measured. */
export interface EpochSummary {
  /** 0-based. */
  readonly epoch: number;
  /** Mean of the step losses of the epoch, weighted by batch size. */
  readonly trainLoss: number;
  /** Share of training samples the model classified correctly while training on them (null without a correct count). */
  readonly trainAccuracy: number | null;
  /** Top-1 accuracy on the validation data after the epoch (null without validation data). */
  readonly validationAccuracy: number | null;
  readonly samples: number;
  /** Time spent running training updates (data preparation and evaluation excluded). */
  readonly seconds: number;
}

/**
 * The state of a training run at a step boundary: everything needed to continue it exactly.
 * `settings` is opaque JSON to this codec (the Trainer stores its run settings there and checks
 * them on resume).
 */
export interface TrainingCheckpoint {
  readonly position: TrainingPosition;
  /** The shuffling generator's state at the start of `position.epoch` (before that epoch's shuffle). */
  readonly epochRandomState: SeededRandomState;
  /** What the run was started with (step spec, schedule, batch size, seed, ...), as JSON. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Summaries of the epochs finished so far. */
  readonly history: readonly EpochSummary[];
  /** The loss of the last update done (null before the first). */
  readonly lastLoss: number | null;
  /** Totals of the epoch in progress. */
  readonly epochTotals: EpochTotals;
  /** Parameters, optimizer state and buffers, by the step input that takes them. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
}

/*
 * File layout (version 1), little-endian:
 *   bytes 0-7    magic "AGLMCKPT"
 *   bytes 8-11   format version (uint32) = 1
 *   bytes 12-15  header length H (uint32)
 *   bytes 16..   H bytes of UTF-8 JSON: { position, epochRandomState, settings, history, lastLoss,
 *                epochTotals, tensors: [{ name, type, dims, offset, byteLength }], dataBytes, dataCrc32 }
 *   then zero padding to a multiple of 64, then the data section: each tensor's raw bytes at
 *   `offset` (relative to the data section, multiples of 64), and CRC-32 (zlib) over the whole
 *   data section, so truncation and corruption are detected on load.
 */
const MAGIC = 'AGLMCKPT';
export const CHECKPOINT_FORMAT_VERSION = 1;
const PREAMBLE_BYTES = 16;
const ALIGNMENT = 64;

const ELEMENT_BYTES: Readonly<Record<CheckpointTensorType, number>> = { float32: 4, float64: 8, int32: 4, int64: 8 };

interface TensorEntry {
  readonly name: string;
  readonly type: CheckpointTensorType;
  readonly dims: number[];
  readonly offset: number;
  readonly byteLength: number;
}

/** Serializes a checkpoint into the chunks of a version-1 checkpoint file (no tensor data is copied). */
export function encodeCheckpoint(checkpoint: TrainingCheckpoint): Uint8Array[] {
  const entries: TensorEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let crc = 0;
  for (const [name, tensor] of checkpoint.tensors) {
    const expected = tensor.dims.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[tensor.type];
    if (tensor.data.byteLength !== expected) {
      throw new ModelFormatError(
        `Checkpoint tensor "${name}" has ${tensor.data.byteLength} bytes but ${tensor.type}[${tensor.dims.join(', ')}] needs ${expected}.`,
      );
    }
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    entries.push({ name, type: tensor.type, dims: [...tensor.dims], offset, byteLength: bytes.length });
    const padding = new Uint8Array(paddedLength(bytes.length) - bytes.length);
    for (const chunk of [bytes, padding]) {
      if (chunk.length === 0) continue; // node's crc32 returns 0, not the running value, for some empty inputs
      chunks.push(chunk);
      crc = crc32(chunk, crc);
    }
    offset += bytes.length + padding.length;
  }
  const header = new TextEncoder().encode(
    JSON.stringify({
      position: checkpoint.position,
      epochRandomState: checkpoint.epochRandomState,
      settings: checkpoint.settings,
      history: checkpoint.history,
      lastLoss: checkpoint.lastLoss,
      epochTotals: checkpoint.epochTotals,
      tensors: entries,
      dataBytes: offset,
      dataCrc32: crc,
    }),
  );
  const preamble = new Uint8Array(paddedLength(PREAMBLE_BYTES + header.length));
  const view = new DataView(preamble.buffer);
  for (let i = 0; i < MAGIC.length; i++) preamble[i] = MAGIC.charCodeAt(i);
  view.setUint32(8, CHECKPOINT_FORMAT_VERSION, true);
  view.setUint32(12, header.length, true);
  preamble.set(header, PREAMBLE_BYTES);
  return [preamble, ...chunks];
}

/**
 * Reads a checkpoint from its bytes, checking everything: magic, version, header, tensor table
 * and the data checksum. Any problem is a ModelFormatError naming `file` and saying what to do.
 * Tensor data is copied into fresh, aligned buffers (the bytes can be reused afterwards).
 */
export function decodeCheckpoint(bytes: Uint8Array, file?: string): TrainingCheckpoint {
  const where = file === undefined ? 'The checkpoint data' : `Checkpoint file ${file}`;
  const invalid = (reason: string, cause?: unknown): ModelFormatError =>
    new ModelFormatError(
      `${where} is not a usable Open-AutoGLM training checkpoint: ${reason}. ` +
        'Give a file written by "autoglm train --checkpoint" (or Trainer checkpoints), or start the training again without --resume.',
      { file, cause },
    );
  if (bytes.length < PREAMBLE_BYTES || String.fromCharCode(...bytes.subarray(0, MAGIC.length)) !== MAGIC) {
    throw invalid(`it does not start with "${MAGIC}"`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw invalid(`it has format version ${version}, and this version of Open-AutoGLM reads version ${CHECKPOINT_FORMAT_VERSION}`);
  }
  const headerLength = view.getUint32(12, true);
  const dataStart = paddedLength(PREAMBLE_BYTES + headerLength);
  if (bytes.length < dataStart) throw invalid(`it is truncated (${bytes.length} bytes; the header alone needs ${dataStart})`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerLength)));
  } catch (error) {
    throw invalid(`its header is not valid JSON (${(error as Error).message})`, error);
  }
  const parsed = parseHeader(header, invalid);
  const data = bytes.subarray(dataStart);
  if (data.length !== parsed.dataBytes) {
    throw invalid(`its data section has ${data.length} bytes but the header announces ${parsed.dataBytes} (the file is truncated or was altered)`);
  }
  if (crc32(data) !== parsed.dataCrc32) throw invalid('the checksum of its tensor data does not match (the file is corrupt)');
  const tensors = new Map<string, CheckpointTensor>();
  for (const entry of parsed.tensors) {
    const count = entry.dims.reduce((a, b) => a * b, 1);
    if (entry.byteLength !== count * ELEMENT_BYTES[entry.type] || entry.offset + entry.byteLength > data.length) {
      throw invalid(`tensor "${entry.name}" (${entry.type}[${entry.dims.join(', ')}]) does not fit its ${entry.byteLength} bytes at offset ${entry.offset}`);
    }
    if (tensors.has(entry.name)) throw invalid(`tensor "${entry.name}" appears twice`);
    const buffer = new ArrayBuffer(entry.byteLength);
    new Uint8Array(buffer).set(data.subarray(entry.offset, entry.offset + entry.byteLength));
    tensors.set(entry.name, { type: entry.type, dims: entry.dims, data: typedArray(entry.type, buffer, count) });
  }
  return {
    position: parsed.position,
    epochRandomState: parsed.epochRandomState,
    settings: parsed.settings,
    history: parsed.history,
    lastLoss: parsed.lastLoss,
    epochTotals: parsed.epochTotals,
    tensors,
  };
}

/** Writes a checkpoint atomically (a reader never sees a partial file; see `writeFileAtomic`). */
export async function writeCheckpoint(file: string, checkpoint: TrainingCheckpoint): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(checkpoint));
}

/** Reads and validates a checkpoint file (FileAccessError when it cannot be read, ModelFormatError when it is not valid). */
export async function readCheckpoint(file: string): Promise<TrainingCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileAccessError(
      `Checkpoint file ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (error as Error).message})`}. ` +
        'Check the path given to --resume.',
      { cause: error, file },
    );
  }
  return decodeCheckpoint(bytes, file);
}

function paddedLength(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

function typedArray(type: CheckpointTensorType, buffer: ArrayBuffer, count: number): TensorArray {
  switch (type) {
    case 'float32':
      return new Float32Array(buffer, 0, count);
    case 'float64':
      return new Float64Array(buffer, 0, count);
    case 'int32':
      return new Int32Array(buffer, 0, count);
    case 'int64':
      return new BigInt64Array(buffer, 0, count);
  }
}

interface ParsedHeader {
  readonly position: TrainingPosition;
  readonly epochRandomState: SeededRandomState;
  readonly settings: Record<string, unknown>;
  readonly history: EpochSummary[];
  readonly lastLoss: number | null;
  readonly epochTotals: EpochTotals;
  readonly tensors: TensorEntry[];
  readonly dataBytes: number;
  readonly dataCrc32: number;
}

/** Checks the header's shape field by field; the first problem becomes the error. */
function parseHeader(header: unknown, invalid: (reason: string) => ModelFormatError): ParsedHeader {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!isObject(header)) throw invalid('its header is not a JSON object');
  const { position, epochRandomState, settings, history, lastLoss, epochTotals, tensors, dataBytes, dataCrc32 } = header;
  if (!isObject(position) || !isCount(position['step']) || !isCount(position['epoch']) || !isCount(position['batchInEpoch'])) {
    throw invalid('its header has no valid "position" ({ step, epoch, batchInEpoch } as whole numbers)');
  }
  if (
    !Array.isArray(epochRandomState) ||
    epochRandomState.length !== 4 ||
    !epochRandomState.every((w) => isCount(w) && w <= 0xffff_ffff)
  ) {
    throw invalid('its header has no valid "epochRandomState" (four unsigned 32-bit integers)');
  }
  if (!isObject(settings)) throw invalid('its header has no "settings" object');
  if (!Array.isArray(history) || !history.every((h) => isObject(h) && isCount(h['epoch']) && typeof h['trainLoss'] === 'number')) {
    throw invalid('its header has no valid "history" (a list of epoch summaries)');
  }
  if (lastLoss !== null && typeof lastLoss !== 'number') throw invalid('its header has no valid "lastLoss" (a number or null)');
  if (!isObject(epochTotals) || !['lossSum', 'correct', 'samples', 'seconds'].every((k) => typeof epochTotals[k] === 'number')) {
    throw invalid('its header has no valid "epochTotals" ({ lossSum, correct, samples, seconds })');
  }
  if (!Array.isArray(tensors)) throw invalid('its header has no "tensors" table');
  const entries = tensors.map((t, i): TensorEntry => {
    if (
      !isObject(t) ||
      typeof t['name'] !== 'string' ||
      typeof t['type'] !== 'string' ||
      !(t['type'] in ELEMENT_BYTES) ||
      !Array.isArray(t['dims']) ||
      !t['dims'].every(isCount) ||
      !isCount(t['offset']) ||
      !isCount(t['byteLength'])
    ) {
      throw invalid(`entry ${i} of its tensor table is malformed (it needs name, type float32|float64|int32|int64, dims, offset, byteLength)`);
    }
    return {
      name: t['name'],
      type: t['type'] as CheckpointTensorType,
      dims: t['dims'] as number[],
      offset: t['offset'],
      byteLength: t['byteLength'],
    };
  });
  if (!isCount(dataBytes) || !isCount(dataCrc32)) throw invalid('its header has no valid "dataBytes" and "dataCrc32"');
  return {
    position: { step: position['step'], epoch: position['epoch'], batchInEpoch: position['batchInEpoch'] } as TrainingPosition,
    epochRandomState: epochRandomState as unknown as SeededRandomState,
    settings,
    history: history as unknown as EpochSummary[],
    lastLoss,
    epochTotals: epochTotals as unknown as EpochTotals,
    tensors: entries,
    dataBytes,
    dataCrc32,
  };
}
