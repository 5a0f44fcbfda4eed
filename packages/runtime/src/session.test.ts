import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { ConfigError, ExternalDataError, FileAccessError, RuntimeExecutionError, UnsupportedOperationError } from '@open-autoglm/core';
import { DataLocation, DataType, makeNode, makeTensorValueInfo, OnnxModel, StringStringEntryProtoSchema, ValueInfoProtoSchema } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, RuntimeSession } from './session.js';
import { tinyModel } from './test-support/tinyModel.js';
import { availableExecutionProviders, resolveRuntimeTarget, sessionOptionsForTarget } from './target.js';
import { warmUp } from './warmUp.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const LENET = fixture('lenet5-fmnist.onnx');
const CPU = { device: 'cpu', threads: 1 } as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'autoglm-session-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveRuntimeTarget', () => {
  it('should fill in the defaults: optimization all, no spinning, cpu provider', () => {
    expect(resolveRuntimeTarget(CPU)).toEqual({
      device: 'cpu',
      threads: 1,
      interOpThreads: undefined,
      optimizationLevel: 'all',
      executionProviders: ['cpu'],
      spinning: false,
    });
  });

  it('should append the cpu provider as fallback to explicit providers', () => {
    const cuda = availableExecutionProviders().some((p) => p.name === 'cuda');
    if (cuda) {
      expect(resolveRuntimeTarget({ device: 'cuda', threads: 1 }).executionProviders).toEqual(['cuda', 'cpu']);
    }
    expect(resolveRuntimeTarget({ ...CPU, executionProviders: ['cpu'] }).executionProviders).toEqual(['cpu']);
  });

  it('should refuse bad thread counts, unknown devices and unknown optimization levels', () => {
    expect(() => resolveRuntimeTarget({ ...CPU, threads: 0 })).toThrow(/threads must be a whole number >= 1, got 0/);
    expect(() => resolveRuntimeTarget({ ...CPU, threads: 1.5 })).toThrow(ConfigError);
    expect(() => resolveRuntimeTarget({ ...CPU, interOpThreads: -1 })).toThrow(/interOpThreads/);
    expect(() => resolveRuntimeTarget({ device: 'tpu' as 'cpu', threads: 1 })).toThrow(/Unknown runtime device "tpu".*cpu, cuda/);
    expect(() => resolveRuntimeTarget({ ...CPU, optimizationLevel: 'max' as 'all' })).toThrow(/Unknown optimization level "max"/);
    expect(() => resolveRuntimeTarget({ ...CPU, executionProviders: [] })).toThrow(/executionProviders is empty/);
    expect(() => resolveRuntimeTarget({ device: 'cuda', threads: 1, executionProviders: ['cpu'] })).toThrow(
      /Device "cuda" is not among executionProviders \[cpu\]/,
    );
  });

  it('should refuse providers this build does not have, listing those it has', () => {
    expect(() => resolveRuntimeTarget({ ...CPU, executionProviders: ['xnnpack', 'cpu'] })).toThrow(
      /Execution provider "xnnpack" is not available in this onnxruntime-node build .*available: cpu/,
    );
  });

  it.runIf(process.platform === 'linux')('should refuse a device named but absent on this platform', () => {
    expect(() => resolveRuntimeTarget({ device: 'coreml', threads: 1 })).toThrow(/"coreml" is not available.*Use device "cpu"/);
  });
});

describe('sessionOptionsForTarget', () => {
  it('should map threads, optimization level and spinning to onnxruntime options', () => {
    const options = sessionOptionsForTarget(resolveRuntimeTarget({ ...CPU, threads: 2, interOpThreads: 1, optimizationLevel: 'basic' }));
    expect(options.intraOpNumThreads).toBe(2);
    expect(options.interOpNumThreads).toBe(1);
    expect(options.graphOptimizationLevel).toBe('basic');
    expect(options.executionProviders).toEqual(['cpu']);
    expect(options.extra).toEqual({ session: { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } });
    const spinning = sessionOptionsForTarget(resolveRuntimeTarget({ ...CPU, spinning: true }));
    expect(spinning.extra).toEqual({ session: { 'intra_op.allow_spinning': '1', 'inter_op.allow_spinning': '1' } });
  });
});

describe('createSession', () => {
  it('should load a model file and describe its inputs and outputs', async () => {
    const session = await createSession(LENET, CPU);
    try {
      expect(session).toBeInstanceOf(RuntimeSession);
      expect(session.modelFile).toBe(LENET);
      expect(session.inputs).toEqual([{ name: 'input', type: 'float32', shape: ['batch', 1, 28, 28] }]);
      expect(session.outputs).toEqual([{ name: 'logits', type: 'float32', shape: ['batch', 10] }]);
      expect(session.target.optimizationLevel).toBe('all');
      const result = await session.run({ input: new Tensor('float32', new Float32Array(2 * 784), [2, 1, 28, 28]) });
      expect(result['logits']?.dims).toEqual([2, 10]);
    } finally {
      await session.release();
    }
  });

  it('should load a model from bytes, naming it "in-memory model" unless a file is given', async () => {
    const bytes = await readFile(LENET);
    const anonymous = await createSession(bytes, { ...CPU, optimizationLevel: 'disabled' });
    expect(anonymous.modelLabel).toBe('in-memory model');
    await anonymous.release();
    const named = await createSession(bytes, CPU, { file: 'lenet-copy.onnx' });
    expect(named.modelLabel).toBe('lenet-copy.onnx');
    await named.release();
  });

  it('should refuse external data outside the model folder before onnxruntime reads it', async () => {
    const model = OnnxModel.fromBytes(await readFile(LENET));
    const weight = model.graph.getInitializer('conv1.weight');
    if (weight === undefined) throw new Error('lenet5 has conv1.weight');
    await writeFile(path.join(dir, 'secret.bin'), weight.rawData);
    weight.rawData = new Uint8Array(0);
    weight.dataLocation = DataLocation.EXTERNAL;
    weight.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: '../secret.bin' })];
    await mkdir(path.join(dir, 'models'), { recursive: true });
    const file = path.join(dir, 'models', 'escaping.onnx');
    const bytes = model.toBytes();
    await writeFile(file, bytes);
    await expect(createSession(file, CPU)).rejects.toThrow(ExternalDataError);
    await expect(createSession(bytes, CPU, { file })).rejects.toThrow(/points outside the model's folder/);
  });

  it('should give the same logits at every optimization level', async () => {
    const x = Float32Array.from({ length: 4 * 784 }, (_, i) => (i % 97) / 97);
    const logits: Float32Array[] = [];
    for (const optimizationLevel of ['disabled', 'basic', 'extended', 'all'] as const) {
      const session = await createSession(LENET, { ...CPU, optimizationLevel });
      const out = await session.run({ input: new Tensor('float32', x, [4, 1, 28, 28]) });
      logits.push(out['logits']?.data as Float32Array);
      await session.release();
    }
    for (const other of logits.slice(1)) {
      for (let i = 0; i < other.length; i++) expect(other[i]).toBeCloseTo(logits[0]?.[i] as number, 4);
    }
  });

  it('should find external data next to a model file, and next to `file` for bytes', async () => {
    const model = await OnnxModel.load(LENET);
    const file = path.join(dir, 'lenet-external.onnx');
    await model.save(file, { externalData: true });
    const bytes = await readFile(file);
    expect(bytes.length).toBeLessThan(20_000); // the weights went to lenet-external.onnx.data
    const fromPath = await createSession(file, CPU);
    const fromBytes = await createSession(bytes, CPU, { file });
    const reference = await createSession(LENET, CPU);
    const x = new Tensor('float32', Float32Array.from({ length: 784 }, (_, i) => (i % 13) / 13), [1, 1, 28, 28]);
    const expected = Array.from((await reference.run({ input: x }))['logits']?.data as Float32Array);
    for (const session of [fromPath, fromBytes]) {
      expect(Array.from((await session.run({ input: x }))['logits']?.data as Float32Array)).toEqual(expected);
      await session.release();
    }
    await reference.release();
  });

  it('should report a missing model file as a FileAccessError naming it', async () => {
    const missing = path.join(dir, 'missing.onnx');
    const error = await createSession(missing, CPU).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileAccessError);
    expect((error as FileAccessError).file).toBe(missing);
    expect((error as Error).message).toMatch(/missing\.onnx does not exist/);
    await expect(createSession(dir, CPU)).rejects.toThrow(/is not a file/);
  });

  it("should wrap onnxruntime's load failure in a RuntimeExecutionError naming the model", async () => {
    const error = await createSession(new TextEncoder().encode('not a model'), CPU, { file: 'notes.onnx' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RuntimeExecutionError);
    expect((error as Error).message).toMatch(/onnxruntime could not load model notes\.onnx on cpu .*protobuf parsing failed/);
    expect((error as RuntimeExecutionError).file).toBe('notes.onnx');
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('should refuse a model with a non-tensor output', async () => {
    const sequenceOutput = create(ValueInfoProtoSchema, {
      name: 'seq',
      type: { value: { case: 'sequenceType', value: { elemType: { value: { case: 'tensorType', value: { elemType: DataType.FLOAT } } } } } },
    });
    const model = tinyModel(
      [makeNode('SequenceConstruct', ['x'], ['seq'])],
      [makeTensorValueInfo('x', DataType.FLOAT, [2])],
      [sequenceOutput],
    );
    const error = await createSession(model, CPU, { file: 'seq.onnx' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedOperationError);
    expect((error as Error).message).toMatch(/Model seq\.onnx has a non-tensor output "seq" \(a sequence or map\)/);
  });

  it.runIf(availableExecutionProviders().some((p) => p.name === 'cuda' && !p.bundled))(
    'should explain that an unbundled provider needs its libraries',
    async () => {
      // This build lists CUDA but ships without its provider libraries (install script skipped).
      await expect(createSession(LENET, { device: 'cuda', threads: 1 })).rejects.toThrow(
        /could not load model .*lenet5-fmnist\.onnx on cuda.*does not carry the cuda provider libraries.*use device "cpu"/,
      );
    },
  );
});

describe('RuntimeSession.run', () => {
  it("should wrap an inference failure with the model, ORT's message, and both signatures", async () => {
    const session = await createSession(LENET, CPU);
    try {
      const error = await session.run({ input: new Tensor('float32', new Float32Array(10), [1, 10]) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RuntimeExecutionError);
      const message = (error as Error).message;
      expect(message).toContain(`Inference failed for model ${LENET}`);
      expect(message).toMatch(/Invalid rank for input: input/);
      expect(message).toContain('Inputs given: input: float32[1, 10]; the model expects: input: float32[batch, 1, 28, 28]');
    } finally {
      await session.release();
    }
  });

  it('should compute only the requested outputs', async () => {
    const session = await createSession(LENET, CPU);
    const out = await session.run({ input: new Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) }, ['logits']);
    expect(Object.keys(out)).toEqual(['logits']);
    await session.release();
  });
});

describe('warmUp', () => {
  it('should run a session on synthetic inputs of a symbolic batch', async () => {
    const session = await createSession(LENET, CPU);
    await expect(warmUp(session, { runs: 2, batch: 3 })).resolves.toBeUndefined();
    await session.release();
  });
});
