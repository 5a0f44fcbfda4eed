import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileAccessError, ModelFormatError } from '@open-autoglm/core';
import {
  type CheckpointTensor,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  type TrainingCheckpoint,
  writeCheckpoint,
} from './TrainingCheckpoint.js';

function sampleCheckpoint(): TrainingCheckpoint {
  const tensors = new Map<string, CheckpointTensor>([
    ['conv.weight', { type: 'float32', dims: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6e-8]) }],
    ['conv.weight.exp_avg', { type: 'float32', dims: [2, 3], data: new Float32Array(6).fill(0.25) }],
    ['steps', { type: 'int64', dims: [], data: new BigInt64Array([9_007_199_254_740_993n]) }],
    ['empty', { type: 'float64', dims: [0], data: new Float64Array(0) }],
    ['odd', { type: 'int32', dims: [3], data: new Int32Array([1, 2, 3]) }],
  ]);
  return {
    position: { step: 17, epoch: 1, batchInEpoch: 5 },
    epochRandomState: [1, 2, 3, 0xffff_ffff],
    settings: { batchSize: 8, spec: { loss: [{ kind: 'crossEntropy' }] } },
    history: [{ epoch: 0, trainLoss: 1.5, trainAccuracy: 0.4, validationAccuracy: null, samples: 96, seconds: 0.1 }],
    lastLoss: 0.6931471805599453,
    epochTotals: { lossSum: 12.5, correct: 30, samples: 40, seconds: 0.25 },
    tensors,
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

describe('TrainingCheckpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-ckpt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should round-trip position, generator state, settings, history and every tensor exactly', () => {
    const original = sampleCheckpoint();
    const decoded = decodeCheckpoint(concat(encodeCheckpoint(original)));
    expect(decoded.position).toEqual(original.position);
    expect(decoded.epochRandomState).toEqual(original.epochRandomState);
    expect(decoded.settings).toEqual(original.settings);
    expect(decoded.history).toEqual(original.history);
    expect(decoded.lastLoss).toBe(original.lastLoss);
    expect(decoded.epochTotals).toEqual(original.epochTotals);
    expect([...decoded.tensors.keys()]).toEqual([...original.tensors.keys()]);
    for (const [name, tensor] of original.tensors) {
      const back = decoded.tensors.get(name)!;
      expect(back.type).toBe(tensor.type);
      expect(back.dims).toEqual(tensor.dims);
      expect(back.data).toEqual(tensor.data);
      expect(back.data.byteOffset % 8).toBe(0);
    }
  });

  it('should write atomically and read the file back', async () => {
    const file = path.join(dir, 'run.ckpt');
    await writeCheckpoint(file, sampleCheckpoint());
    await writeCheckpoint(file, { ...sampleCheckpoint(), position: { step: 18, epoch: 1, batchInEpoch: 6 } });
    expect((await readCheckpoint(file)).position.step).toBe(18);
    expect(await readdir(dir)).toEqual(['run.ckpt']);
  });

  it('should reject a file that is not a checkpoint, naming it', async () => {
    const file = path.join(dir, 'model.onnx');
    await writeFile(file, 'not a checkpoint at all');
    await expect(readCheckpoint(file)).rejects.toThrow(ModelFormatError);
    await expect(readCheckpoint(file)).rejects.toThrow(`Checkpoint file ${file} is not a usable Open-AutoGLM training checkpoint`);
    await expect(readCheckpoint(path.join(dir, 'missing.ckpt'))).rejects.toThrow(FileAccessError);
  });

  it('should detect truncation, corruption and an unknown format version', () => {
    const bytes = concat(encodeCheckpoint(sampleCheckpoint()));
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 3), 'a.ckpt')).toThrow(/truncated/);
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 70] = (corrupt[corrupt.length - 70] ?? 0) ^ 0xff;
    expect(() => decodeCheckpoint(corrupt, 'a.ckpt')).toThrow(/checksum/);
    const future = bytes.slice();
    new DataView(future.buffer).setUint32(8, 2, true);
    expect(() => decodeCheckpoint(future, 'a.ckpt')).toThrow(/format version 2/);
    const badHeader = bytes.slice();
    badHeader[16] = 0x5b; // '[' instead of '{': valid JSON start, wrong structure or syntax
    expect(() => decodeCheckpoint(badHeader, 'a.ckpt')).toThrow(/header/);
  });

  it('should refuse to encode a tensor whose data does not fill its dims', () => {
    const checkpoint = sampleCheckpoint();
    const tensors = new Map(checkpoint.tensors);
    tensors.set('bad', { type: 'float32', dims: [4], data: new Float32Array(3) });
    expect(() => encodeCheckpoint({ ...checkpoint, tensors })).toThrow(/needs 16/);
  });

  it('should encode without copying tensor data', async () => {
    const checkpoint = sampleCheckpoint();
    const chunks = encodeCheckpoint(checkpoint);
    const weight = checkpoint.tensors.get('conv.weight')!.data;
    expect(chunks.some((c) => c.buffer === weight.buffer)).toBe(true);
    expect((await readFile(path.join(dir, 'run.ckpt'))).subarray(0, 8).toString()).toBe('AGLMCKPT');
  });
});
