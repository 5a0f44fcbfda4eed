import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { WireType } from '@bufbuild/protobuf/wire';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExternalDataError, FileAccessError, ModelFormatError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNode, makeTensorValueInfo } from './OnnxGraph.js';
import { OnnxModel, loadModel } from './OnnxModel.js';
import {
  DataLocation,
  DataType,
  FunctionProtoSchema,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
} from './proto.js';
import { arrayToTensor } from './tensor.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const fixture = (name: string): string => path.join(FIXTURES, name);

/** mulberry32: a tiny seeded generator, so every run feeds the same inputs. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded inputs for a fixture: images in [0, 1), or token ids in [0, 8003) with padding zeros. */
function fixtureFeeds(model: string, batch: number, seed: number): Record<string, ort.Tensor> {
  const random = seededRandom(seed);
  if (model === 'tinybert-spam') {
    const ids = new BigInt64Array(batch * 128);
    for (let b = 0; b < batch; b++) {
      const length = 1 + Math.floor(random() * 127); // the rest of the row stays 0 = [PAD]
      ids[b * 128] = 2n; // [CLS]
      for (let t = 1; t < length; t++) ids[b * 128 + t] = BigInt(Math.floor(random() * 8003));
    }
    return { input_ids: new ort.Tensor('int64', ids, [batch, 128]) };
  }
  const pixels = Float32Array.from({ length: batch * 28 * 28 }, () => random());
  return { input: new ort.Tensor('float32', pixels, [batch, 1, 28, 28]) };
}

/** Runs a model with one thread and returns each output's raw bytes, for bitwise comparison. */
async function runModel(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Uint8Array>> {
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  const session =
    typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  try {
    const results = await session.run(feeds);
    const bytes: Record<string, Uint8Array> = {};
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data as Float32Array;
      bytes[name] = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    }
    return bytes;
  } finally {
    await session.release();
  }
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'onnx-model-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const FIXTURE_MODELS = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam'] as const;

describe('OnnxModel', () => {
  describe.each(FIXTURE_MODELS)('round trip of %s', (name) => {
    it('should save bytes that decode to an equal proto and run bitwise identically in onnxruntime', async () => {
      const original = await readFile(fixture(`${name}.onnx`));
      const model = await OnnxModel.load(fixture(`${name}.onnx`));
      const target = path.join(tmp, `${name}.onnx`);
      await model.save(target);
      const saved = await readFile(target);

      expect(equals(ModelProtoSchema, fromBinary(ModelProtoSchema, saved), fromBinary(ModelProtoSchema, original))).toBe(true);
      expect(Buffer.compare(saved, original)).toBe(0);

      const feeds = fixtureFeeds(name, 3, 1234);
      const expected = await runModel(new Uint8Array(original), feeds);
      const actual = await runModel(target, feeds);
      expect(Object.keys(actual)).toEqual(['logits']);
      expect(Buffer.compare(actual.logits as Uint8Array, expected.logits as Uint8Array)).toBe(0);
    });
  });

  it('should include padding tokens in the tinybert inputs it feeds', () => {
    const ids = fixtureFeeds('tinybert-spam', 3, 1234).input_ids?.data as BigInt64Array;
    expect(ids.includes(0n)).toBe(true);
    expect(ids.every((id) => id >= 0n && id < 8003n)).toBe(true);
  });

  it('should keep metadata, doc strings, local functions, unknown domains and unknown fields byte for byte', async () => {
    const bytes = buildRichModelBytes();
    const source = path.join(tmp, 'rich.onnx');
    await writeFile(source, bytes);
    const model = await loadModel(source);
    expect(model.proto.functions[0]?.name).toBe('AddTwice');
    expect(model.opsetVersion('com.example.unknown')).toBe(3);
    const target = path.join(tmp, 'rich-saved.onnx');
    await model.save(target);
    expect(Buffer.compare(await readFile(target), bytes)).toBe(0);
    expect(Buffer.compare(Buffer.from(model.toBytes()), bytes)).toBe(0);
  });

  it('should run a model that calls a local function the same after a round trip', async () => {
    const proto = richModelProto();
    proto.opsetImport = proto.opsetImport.filter((opset) => opset.domain !== 'com.example.unknown');
    const bytes = toBinary(ModelProtoSchema, proto);
    const model = OnnxModel.fromBytes(bytes);
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const out = await runModel(model.toBytes(), { X: x });
    // Y = (X + W) + W with W = [0.5, 1, 2]
    expect(Array.from(new Float32Array((out.Y as Uint8Array).buffer))).toEqual([2, 4, 7, 5, 7, 10]);
  });

  describe('refusing what is not a model', () => {
    it('should name the file when it is truncated', async () => {
      const file = path.join(tmp, 'truncated.onnx');
      const original = await readFile(fixture('lenet5-fmnist.onnx'));
      await writeFile(file, original.subarray(0, Math.floor(original.length / 2)));
      const error = await OnnxModel.load(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as ModelFormatError).file).toBe(file);
      expect((error as Error).message).toMatch(/is not a valid ONNX model: .*premature EOF.*re-export/);
      expect((error as Error).message).toContain(file);
    });

    it('should refuse every truncation point at the end of the file', () => {
      const original = new Uint8Array(toBinary(ModelProtoSchema, richModelProto()));
      for (let cut = 0; cut < original.length; cut += 7) {
        expect(() => OnnxModel.fromBytes(original.subarray(0, cut), { source: 'cut.onnx' })).toThrow(ModelFormatError);
      }
    });

    it('should refuse random bytes even when protobuf decodes them', async () => {
      const random = seededRandom(7);
      for (let trial = 0; trial < 200; trial++) {
        const bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256));
        expect(() => OnnxModel.fromBytes(bytes, { source: `random-${trial}.onnx` })).toThrow(ModelFormatError);
      }
      // A valid-protobuf but meaningless message: only producer_name set.
      const decoy = toBinary(ModelProtoSchema, create(ModelProtoSchema, { producerName: 'x' }));
      expect(() => OnnxModel.fromBytes(decoy, { source: 'decoy.onnx' })).toThrow(/"decoy.onnx" is not a valid ONNX model: it has no graph/);
      const file = path.join(tmp, 'random.onnx');
      await writeFile(file, Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
      const error = await OnnxModel.load(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as ModelFormatError).file).toBe(file);
    });

    it('should say the file is empty', async () => {
      const file = path.join(tmp, 'empty.onnx');
      await writeFile(file, '');
      await expect(OnnxModel.load(file)).rejects.toThrow(new RegExp(`File "${escape(file)}" is not a valid ONNX model: it is empty`));
    });

    it('should recognise a text file, a Git LFS pointer, a .npy array and a ZIP archive', async () => {
      const text = path.join(tmp, 'notes.onnx');
      await writeFile(text, 'These are my notes about the model.\nIt has 3 layers.\n');
      await expect(OnnxModel.load(text)).rejects.toThrow(/it is a text file\. Check the path: it must point to an \.onnx file\./);
      await expect(OnnxModel.load(fixture('fmnist-val-2k.y.npy'))).rejects.toThrow(/it is a NumPy \.npy array/);
      const zip = path.join(tmp, 'checkpoint.pt');
      await writeFile(zip, Buffer.from('PK\x03\x04 rest of a zip', 'latin1'));
      await expect(OnnxModel.load(zip)).rejects.toThrow(/a ZIP archive \(a PyTorch checkpoint or \.npz\?\)/);
      const pointer = path.join(tmp, 'pointer.onnx');
      await writeFile(pointer, 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n');
      await expect(OnnxModel.load(pointer)).rejects.toThrow(/Git LFS pointer.*git lfs pull/);
    });

    it('should throw FileAccessError naming a missing file or a folder', async () => {
      const missing = path.join(tmp, 'nope', 'missing.onnx');
      const error = await OnnxModel.load(missing).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FileAccessError);
      expect((error as FileAccessError).file).toBe(missing);
      expect((error as Error).message).toBe(`Model file "${missing}" does not exist. Check the path.`);
      await expect(OnnxModel.load(tmp)).rejects.toThrow(/is a folder/);
    });

    it('should report a graph that reads an undefined name, with the node', () => {
      const proto = richModelProto();
      proto.graph?.node[0]?.input.push('ghost');
      expect(() => OnnxModel.fromBytes(toBinary(ModelProtoSchema, proto), { source: 'm.onnx' })).toThrow(
        /"m.onnx" is not a valid ONNX model: node "twice" \(local.AddTwice\) of the main graph reads "ghost", which no input, initializer or node defines/,
      );
    });

    it('should report missing opset imports, an IR version of 0, empty op types, duplicate outputs and bad outputs', () => {
      const check = (edit: (proto: ModelProto) => void): OnnxModel => {
        const proto = richModelProto();
        edit(proto);
        return OnnxModel.fromBytes(toBinary(ModelProtoSchema, proto));
      };
      expect(() => check((p) => (p.opsetImport = []))).toThrow(/opset_import is empty/);
      expect(() => check((p) => (p.irVersion = 0n))).toThrow(/IR version is not set/);
      expect(() => check((p) => ((p.graph?.node[0] as { opType: string }).opType = ''))).toThrow(/has no op_type/);
      expect(() => check((p) => p.graph?.node.push(makeNode('Relu', ['X'], ['Y'])))).toThrow(/"Y" of the main graph is defined twice/);
      expect(() => check((p) => p.graph?.output.push(makeTensorValueInfo('Z', DataType.FLOAT)))).toThrow(
        /output "Z" of the main graph is not defined/,
      );
      expect(() => check((p) => p.graph?.node.push(makeNode('Gelu', ['X'], ['G'], {}, '', 'com.microsoft')))).toThrow(
        /uses domain "com.microsoft", which has no opset import/,
      );
      expect(() =>
        check((p) => {
          const w = p.graph?.initializer[0];
          if (w !== undefined) w.rawData = w.rawData.subarray(0, 8);
        }),
      ).toThrow(/initializer "W" of the main graph has 8 bytes of data but its shape \[3\] needs 12/);
    });

    it('should accept nodes listed out of order (they can be sorted)', () => {
      const proto = richModelProto();
      proto.graph?.node.push(makeNode('Relu', ['Y'], ['R']));
      proto.graph?.output.push(makeTensorValueInfo('R', DataType.FLOAT));
      proto.graph?.node.reverse();
      expect(OnnxModel.fromBytes(toBinary(ModelProtoSchema, proto)).problems()).toEqual([]);
    });
  });

  describe('saving', () => {
    it('should refuse to overwrite the file it was loaded from unless asked', async () => {
      const source = path.join(tmp, 'own.onnx');
      await writeFile(source, toBinary(ModelProtoSchema, richModelProto()));
      const model = await OnnxModel.load(source);
      model.proto.docString = 'changed';
      const error = await model.save(source).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FileAccessError);
      expect((error as Error).message).toMatch(/Refusing to overwrite .*own\.onnx.*overwriteInput/);
      await expect(model.clone().save(path.join(tmp, '.', 'own.onnx'))).rejects.toThrow(FileAccessError);
      await model.save(source, { overwriteInput: true });
      expect((await OnnxModel.load(source)).proto.docString).toBe('changed');
    });

    it('should leave no temporary file behind and replace an existing file completely', async () => {
      const folder = await mkdtemp(path.join(tmp, 'save-'));
      const target = path.join(folder, 'out.onnx');
      await writeFile(target, Buffer.alloc(10_000_000, 1));
      const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, richModelProto()));
      await model.save(target);
      expect(await readdir(folder)).toEqual(['out.onnx']);
      expect(Buffer.compare(await readFile(target), Buffer.from(model.toBytes()))).toBe(0);
    });

    it('should refuse a folder that does not exist, naming the path', async () => {
      const target = path.join(tmp, 'no-such-folder', 'out.onnx');
      const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, richModelProto()));
      const error = await model.save(target).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FileAccessError);
      expect((error as Error).message).toContain('does not exist');
      expect((error as FileAccessError).file).toBe(target);
    });

    it('should refuse to save a model an edit broke, unless validation is turned off', async () => {
      const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, richModelProto()));
      const [node] = model.graph.nodes;
      if (node === undefined) throw new Error('the rich model lost its node');
      model.graph.setNodeInput(node, 1, 'deleted_weight');
      const target = path.join(tmp, 'broken.onnx');
      const error = await model.save(target).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as Error).message).toMatch(
        /Cannot save ".*broken\.onnx": the model is no longer valid ONNX: node "twice" .* reads "deleted_weight"/,
      );
      await expect(readFile(target)).rejects.toThrow(/ENOENT/);
      await model.save(target, { validate: false });
      expect(() => OnnxModel.fromBytes(new Uint8Array(Buffer.from(model.toBytes())))).toThrow(ModelFormatError);
      expect((await readFile(target)).length).toBeGreaterThan(0);
    });

    it('should refuse to save a model whose external data was never read', async () => {
      const proto = richModelProto();
      const w = proto.graph?.initializer[0];
      if (w === undefined) throw new Error('fixture model lost its initializer');
      w.rawData = new Uint8Array(0);
      w.dataLocation = DataLocation.EXTERNAL;
      w.externalData = [create(StringStringEntryProtoSchema, { key: 'location', value: 'w.bin' })];
      const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, proto), { source: 'in-memory.onnx' });
      await expect(model.save(path.join(tmp, 'lost.onnx'))).rejects.toThrow(ExternalDataError);
      await expect(model.save(path.join(tmp, 'lost.onnx'))).rejects.toThrow(/tensor "W" still refers to external data "w.bin"/);
    });
  });

  it('should read and set opset versions, treating "" and "ai.onnx" alike', () => {
    const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, richModelProto()));
    expect(model.opsetVersion()).toBe(17);
    expect(model.opsetVersion('ai.onnx')).toBe(17);
    expect(model.opsetVersion('com.microsoft')).toBeUndefined();
    model.setOpsetVersion(1, 'com.microsoft');
    model.setOpsetVersion(18);
    expect(model.opsetVersion('com.microsoft')).toBe(1);
    expect(model.opsetVersion('')).toBe(18);
  });

  it('should clone deeply, so edits to the copy leave the original alone', () => {
    const model = OnnxModel.fromBytes(toBinary(ModelProtoSchema, richModelProto()), { source: 'a.onnx' });
    const copy = model.clone();
    const [first] = copy.graph.nodes;
    const [entry] = copy.proto.metadataProps;
    if (first === undefined || entry === undefined) throw new Error('the copy lost its node or metadata');
    copy.graph.removeNode(first);
    entry.value = 'other';
    expect(model.graph.nodes).toHaveLength(1);
    expect(model.proto.metadataProps[0]?.value).toBe('v1');
    expect(copy.source).toBe('a.onnx');
    expect(Buffer.compare(Buffer.from(model.clone().toBytes()), Buffer.from(model.toBytes()))).toBe(0);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A small model using most of what a round trip must keep: metadata and doc strings at every
 * level, a local function called from the graph, an opset import of a domain nobody knows, and
 * an unknown field inside a node.
 */
function richModelProto(): ModelProto {
  const fn = create(FunctionProtoSchema, {
    name: 'AddTwice',
    domain: 'local',
    input: ['a', 'b'],
    output: ['c'],
    node: [makeNode('Add', ['a', 'b'], ['t']), makeNode('Add', ['t', 'b'], ['c'])],
    opsetImport: [{ domain: '', version: 17n }],
    docString: 'c = a + 2b',
  });
  const node = makeNode('AddTwice', ['X', 'W'], ['Y'], {}, 'twice', 'local');
  node.docString = 'calls the local function';
  node.$unknown = [{ no: 999, wireType: WireType.LengthDelimited, data: Uint8Array.from([3, 1, 2, 3]) }];
  const graph = create(GraphProtoSchema, {
    name: 'rich',
    docString: 'graph doc',
    node: [node],
    input: [makeTensorValueInfo('X', DataType.FLOAT, ['batch', 3])],
    output: [makeTensorValueInfo('Y', DataType.FLOAT, ['batch', 3])],
    initializer: [arrayToTensor('W', Float32Array.from([0.5, 1, 2]), [3])],
  });
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'model.test',
    producerVersion: '1',
    docString: 'model doc',
    graph,
    opsetImport: [
      { domain: '', version: 17n },
      { domain: 'local', version: 1n },
      { domain: 'com.example.unknown', version: 3n },
    ],
    metadataProps: [create(StringStringEntryProtoSchema, { key: 'k1', value: 'v1' })],
    functions: [fn],
  });
}

/** The rich model's bytes with an unknown top-level field (number 1000, bytes "hello") appended. */
function buildRichModelBytes(): Buffer {
  const known = toBinary(ModelProtoSchema, richModelProto());
  const unknownField = Buffer.from([0xc2, 0x3e, 5, ...Buffer.from('hello')]); // tag (1000 << 3 | 2), length 5
  return Buffer.concat([known, unknownField]);
}
