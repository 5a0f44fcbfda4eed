import { create, toBinary } from '@bufbuild/protobuf';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ExternalDataError, FileAccessError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalDataOf, externalizeTensors, hasExternalData, loadExternalData } from './externalData.js';
import { makeNode, makeTensorValueInfo } from './OnnxGraph.js';
import { makeModel } from './makeModel.js';
import { OnnxModel } from './OnnxModel.js';
import { DataLocation, DataType, GraphProtoSchema, type ModelProto, ModelProtoSchema, StringStringEntryProtoSchema } from './proto.js';
import { arrayToTensor, tensorToArray } from './tensor.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'onnx-external-data-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Y = X + W with W = [0, 1, ..., 255] as float32 (1,024 bytes). */
function addModel(): ModelProto {
  const graph = create(GraphProtoSchema, {
    name: 'add',
    node: [makeNode('Add', ['X', 'W'], ['Y'])],
    input: [makeTensorValueInfo('X', DataType.FLOAT, [256])],
    output: [makeTensorValueInfo('Y', DataType.FLOAT, [256])],
    initializer: [arrayToTensor('W', Float32Array.from({ length: 256 }, (_, i) => i), [256])],
  });
  return makeModel(graph);
}

const W_BYTES = Buffer.from(Float32Array.from({ length: 256 }, (_, i) => i).buffer);

/**
 * Writes the add model into a fresh folder with W stored externally at `location` (plus
 * `entries` such as offset/length); returns the model's path.
 */
async function writeExternalModel(location: string, entries: Record<string, string> = {}): Promise<string> {
  const folder = await mkdtemp(path.join(tmp, 'case-'));
  const proto = addModel();
  const w = proto.graph?.initializer[0];
  if (w === undefined) throw new Error('the add model lost W');
  w.rawData = new Uint8Array(0);
  w.dataLocation = DataLocation.EXTERNAL;
  w.externalData = Object.entries({ location, ...entries }).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
  const modelPath = path.join(folder, 'model.onnx');
  await writeFile(modelPath, toBinary(ModelProtoSchema, proto));
  return modelPath;
}

async function expectRefusal(modelPath: string, location: string, reason: RegExp): Promise<void> {
  const error = await OnnxModel.load(modelPath).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ExternalDataError);
  expect((error as ExternalDataError).file).toBe(modelPath);
  const message = (error as Error).message;
  expect(message).toContain(`Model "${modelPath}"`);
  expect(message).toContain('tensor "W"');
  expect(message).toContain(`"${location}"`);
  expect(message).toMatch(reason);
}

describe('external data', () => {
  it('should save a fixture with external data, reload equal values, and run bitwise identically in onnxruntime', async () => {
    const folder = await mkdtemp(path.join(tmp, 'vgg-'));
    const original = await readFile(path.join(FIXTURES, 'vgg11bn-mnist.onnx'));
    const model = await OnnxModel.load(path.join(FIXTURES, 'vgg11bn-mnist.onnx'));
    const target = path.join(folder, 'vgg.onnx');
    await model.save(target, { externalData: { sizeThreshold: 1024 } });

    // Saving must not change the model in memory.
    expect(Buffer.compare(Buffer.from(model.toBytes()), original)).toBe(0);
    expect((await readdir(folder)).sort()).toEqual(['vgg.onnx', 'vgg.onnx.data']);
    expect((await stat(target)).size).toBeLessThan(100_000);

    const reloaded = await OnnxModel.load(target);
    const big = model.graph.initializers.filter((t) => t.rawData.length >= 1024);
    expect(big.length).toBeGreaterThan(10);
    for (const tensor of model.graph.initializers) {
      const copy = reloaded.graph.getInitializer(tensor.name);
      expect(copy).toBeDefined();
      if (copy === undefined) continue;
      expect(hasExternalData(copy)).toBe(false);
      expect(Buffer.compare(Buffer.from(copy.rawData), Buffer.from(tensor.rawData))).toBe(0);
      expect(Array.from(tensorToArray(copy) as Float32Array)).toEqual(Array.from(tensorToArray(tensor) as Float32Array));
    }
    // Back in one file, the reloaded model is the fixture byte for byte.
    expect(Buffer.compare(Buffer.from(reloaded.toBytes()), original)).toBe(0);

    const saved = fromFileProto(await readFile(target));
    for (const tensor of saved.graph?.initializer ?? []) {
      if (!hasExternalData(tensor)) continue;
      const reference = externalDataOf(tensor, target);
      expect(reference.location).toBe('vgg.onnx.data');
      expect(reference.offset % 4096).toBe(0);
      expect(reference.length).toBe(tensorToArray(model.graph.getInitializer(tensor.name) ?? tensor).byteLength);
    }

    const options = { intraOpNumThreads: 1 };
    const input = new ort.Tensor('float32', Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 7919) % 256) / 255), [2, 1, 28, 28]);
    const fromFixture = await ort.InferenceSession.create(new Uint8Array(original), options);
    const fromSaved = await ort.InferenceSession.create(target, options);
    const expected = (await fromFixture.run({ input })).logits?.data as Float32Array;
    const actual = (await fromSaved.run({ input })).logits?.data as Float32Array;
    await fromFixture.release();
    await fromSaved.release();
    const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    expect(Buffer.compare(bytesOf(actual), bytesOf(expected))).toBe(0);
  });

  it('should honour a custom location, threshold and alignment', async () => {
    const folder = await mkdtemp(path.join(tmp, 'custom-'));
    const model = await OnnxModel.load(path.join(FIXTURES, 'lenet5-fmnist.onnx'));
    const target = path.join(folder, 'lenet.onnx');
    await model.save(target, { externalData: { location: 'weights.bin', sizeThreshold: 0, alignment: 1 } });
    const totalBytes = model.graph.initializers.reduce((sum, t) => sum + t.rawData.length, 0);
    expect((await stat(path.join(folder, 'weights.bin'))).size).toBe(totalBytes);
    const reloaded = await OnnxModel.load(target);
    expect(Buffer.compare(Buffer.from(reloaded.toBytes()), Buffer.from(model.toBytes()))).toBe(0);
  });

  it('should write no data file when no tensor reaches the threshold', async () => {
    const folder = await mkdtemp(path.join(tmp, 'small-'));
    const model = new OnnxModel(addModel());
    await model.save(path.join(folder, 'add.onnx'), { externalData: { sizeThreshold: 4096 } });
    expect(await readdir(folder)).toEqual(['add.onnx']);
    expect(externalizeTensors(model.proto, 'add.onnx', { sizeThreshold: 4096 })).toBeUndefined();
  });

  it('should refuse a location that is not a plain file name', async () => {
    const model = new OnnxModel(addModel());
    for (const location of ['../w.bin', 'sub/w.bin', '', 'add.onnx']) {
      await expect(model.save(path.join(tmp, 'add.onnx'), { externalData: { location } })).rejects.toThrow(ConfigError);
    }
  });

  it('should read data from a file in a subfolder and through a link that stays inside', async () => {
    const modelPath = await writeExternalModel('weights/w.bin', { offset: '8', length: '1024' });
    const folder = path.dirname(modelPath);
    await mkdir(path.join(folder, 'weights'));
    await writeFile(path.join(folder, 'weights', 'w.bin'), Buffer.concat([Buffer.alloc(8, 0xff), W_BYTES]));
    const model = await OnnxModel.load(modelPath);
    const w = model.graph.getInitializer('W');
    expect(w === undefined ? [] : Array.from(tensorToArray(w) as Float32Array)).toEqual(Array.from({ length: 256 }, (_, i) => i));

    const linked = await writeExternalModel('link.bin');
    await writeFile(path.join(path.dirname(linked), 'real.bin'), W_BYTES);
    await symlink('real.bin', path.join(path.dirname(linked), 'link.bin'));
    expect((await OnnxModel.load(linked)).graph.getInitializer('W')?.rawData.length).toBe(1024);
  });

  it('should load external data after fromBytes when given the model path', async () => {
    const modelPath = await writeExternalModel('w.bin');
    await writeFile(path.join(path.dirname(modelPath), 'w.bin'), W_BYTES);
    const model = OnnxModel.fromBytes(await readFile(modelPath), { source: modelPath });
    expect(model.graph.getInitializer('W')?.dataLocation).toBe(DataLocation.EXTERNAL);
    await model.loadExternalData();
    expect(model.graph.getInitializer('W')?.rawData.length).toBe(1024);
    const anonymous = OnnxModel.fromBytes(await readFile(modelPath));
    await expect(anonymous.loadExternalData()).rejects.toThrow(/Pass the path of the model file/);
    expect(await loadExternalData(anonymous.proto, modelPath)).toEqual([path.join(path.dirname(modelPath), 'w.bin')]);
  });

  describe('refusals', () => {
    it('should refuse an absolute path', async () => {
      const outside = path.join(tmp, 'outside-abs.bin');
      await writeFile(outside, W_BYTES);
      await expectRefusal(await writeExternalModel(outside), outside, /is an absolute path/);
      await expectRefusal(await writeExternalModel('C:\\weights\\w.bin'), 'C:\\weights\\w.bin', /is an absolute path/);
    });

    it('should refuse ".." that leaves the folder, with slashes or backslashes', async () => {
      await writeFile(path.join(tmp, 'outside.bin'), W_BYTES);
      for (const location of ['../outside.bin', 'sub/../../outside.bin', '..\\outside.bin']) {
        await expectRefusal(await writeExternalModel(location), location, /points outside the model's folder/);
      }
    });

    it('should refuse a link that resolves outside the folder, to a file or through a folder', async () => {
      const outside = await mkdtemp(path.join(tmp, 'elsewhere-'));
      await writeFile(path.join(outside, 'secret.bin'), W_BYTES);
      const fileLink = await writeExternalModel('w.bin');
      await symlink(path.join(outside, 'secret.bin'), path.join(path.dirname(fileLink), 'w.bin'));
      await expectRefusal(fileLink, 'w.bin', /is a link that resolves to ".*secret\.bin", outside the model's folder/);
      const folderLink = await writeExternalModel('data/secret.bin');
      await symlink(outside, path.join(path.dirname(folderLink), 'data'));
      await expectRefusal(folderLink, 'data/secret.bin', /is a link that resolves to/);
    });

    it('should refuse a missing file, naming where it looked', async () => {
      const modelPath = await writeExternalModel('missing.bin');
      const reason = /does not exist \(looked for ".*missing\.bin"\)\. Copy the data file next to the model file\./;
      await expectRefusal(modelPath, 'missing.bin', reason);
    });

    it('should refuse offsets and lengths beyond the end of the file', async () => {
      const cases: Record<string, string>[] = [{ offset: '2048' }, { offset: '4', length: '1024' }, { length: '2048' }];
      for (const entries of cases) {
        const modelPath = await writeExternalModel('w.bin', entries);
        await writeFile(path.join(path.dirname(modelPath), 'w.bin'), W_BYTES);
        await expectRefusal(modelPath, 'w.bin', /the file has only 1024 bytes.*truncated/);
      }
    });

    it('should refuse data whose length does not fit the tensor shape, and malformed numbers', async () => {
      const short = await writeExternalModel('w.bin', { length: '512' });
      await writeFile(path.join(path.dirname(short), 'w.bin'), W_BYTES);
      await expectRefusal(short, 'w.bin', /holds 512 bytes but a float32 tensor of shape \[256\] needs 1024/);
      const malformed = await writeExternalModel('w.bin', { offset: '-5' });
      await expect(OnnxModel.load(malformed)).rejects.toThrow(/offset "-5", which is not a byte count/);
    });

    it('should refuse a folder given as the data file', async () => {
      const modelPath = await writeExternalModel('weights');
      await mkdir(path.join(path.dirname(modelPath), 'weights'));
      await expectRefusal(modelPath, 'weights', /is not a regular file/);
    });
  });

  it('should refuse to overwrite the data file the model was loaded from unless asked', async () => {
    const modelPath = await writeExternalModel('w.bin');
    const dataPath = path.join(path.dirname(modelPath), 'w.bin');
    await writeFile(dataPath, W_BYTES);
    const model = await OnnxModel.load(modelPath);
    const other = path.join(path.dirname(modelPath), 'other.onnx');
    const error = await model.save(other, { externalData: { location: 'w.bin' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileAccessError);
    expect(await readdir(path.dirname(modelPath))).not.toContain('other.onnx');
    await model.save(other, { externalData: { location: 'w.bin' }, overwriteInput: true });
    expect(Buffer.compare(await readFile(dataPath), W_BYTES)).toBe(0);
  });
});

function fromFileProto(bytes: Uint8Array): ModelProto {
  return OnnxModel.fromBytes(bytes).proto;
}
