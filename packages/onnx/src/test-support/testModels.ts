/**
 * Test support for shape inference, model statistics and transforms (not exported from the
 * package): the fixture models, a small model builder, and running a model in onnxruntime.
 */
import { readFileSync } from 'node:fs';
import { clone, create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { makeAttribute, type AttributeValue } from '../attributes.js';
import {
  DataType,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  NodeProtoSchema,
  type TensorProto,
} from '../proto.js';
import { toValueInfo, type Dim } from '../inferShapes.js';
import { makeModel } from '../makeModel.js';

export const FIXTURE_MODELS = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam'] as const;
export type FixtureModel = (typeof FIXTURE_MODELS)[number];

const FIXTURES = new URL('../../../../fixtures/', import.meta.url);

export function fixturePath(file: string): string {
  return new URL(file, FIXTURES).pathname;
}

export function loadFixture(name: FixtureModel): ModelProto {
  return fromBinary(ModelProtoSchema, readFileSync(fixturePath(`${name}.onnx`)));
}

interface FixtureManifestModel {
  params: number;
  macs_per_sample: { conv: number; linear: number; attention_matmul: number; total: number };
  splits: { eval: string };
}

export function fixtureManifest(name: FixtureModel): FixtureManifestModel {
  const manifest = JSON.parse(readFileSync(fixturePath('manifest.json'), 'utf8')) as {
    models: Record<string, FixtureManifestModel>;
  };
  const entry = manifest.models[name];
  if (entry === undefined) throw new Error(`fixture ${name} is not in manifest.json`);
  return entry;
}

/** The first `count` samples of a fixture .npy split (float32 images or int64 token ids). */
export function readNpyRows(file: string, count: number): { dims: number[]; data: Float32Array | BigInt64Array } {
  const buf = readFileSync(fixturePath(file));
  const headerLength = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLength);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const dims = [Math.min(count, shape[0] ?? 0), ...shape.slice(1)];
  const n = dims.reduce((a, b) => a * b, 1);
  const body = buf.buffer.slice(buf.byteOffset + 10 + headerLength, buf.byteOffset + buf.length);
  return { dims, data: descr === '<f4' ? new Float32Array(body, 0, n) : new BigInt64Array(body, 0, n) };
}

/** Eval inputs of a fixture model: the first `count` samples of its evaluation split. */
export function fixtureInputs(name: FixtureModel, count: number): Record<string, ort.Tensor> {
  const split = fixtureManifest(name).splits.eval;
  const { dims, data } = readNpyRows(`${split}.x.npy`, count);
  const inputName = name === 'tinybert-spam' ? 'input_ids' : 'input';
  return { [inputName]: new ort.Tensor(data instanceof Float32Array ? 'float32' : 'int64', data, dims) };
}

/** Runs a model in onnxruntime (CPU, 1 thread) and returns every output. */
export async function runModel(
  model: ModelProto,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, model), {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'disabled',
    // Warnings only: some cases deliberately differ from ONNX's own shape inference (see the tests).
    logSeverityLevel: 3,
  });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** A copy of the model where the given tensors are also graph outputs (types as given). */
export function exposeTensors(model: ModelProto, tensors: ReadonlyMap<string, DataType>): ModelProto {
  const copy = clone(ModelProtoSchema, model);
  const graph = copy.graph;
  if (graph === undefined) throw new Error('model has no graph');
  const existing = new Set(graph.output.map((o) => o.name));
  for (const [name, dataType] of tensors) {
    if (!existing.has(name)) graph.output.push(toValueInfo(name, { dataType, dims: undefined }));
  }
  return copy;
}

/** max |a - b| / max |a| over two outputs of the same shape. */
export function relativeDifference(reference: ort.Tensor, other: ort.Tensor): number {
  const a = reference.data as Float32Array;
  const b = other.data as Float32Array;
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(a[i] as number));
  }
  return diff / scale;
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  /** Attributes that must be FLOAT/FLOATS even when their values are integral. */
  floatAttributes?: string[];
  name?: string;
}

export interface ModelSpec {
  inputs: { name: string; dataType: DataType; dims: Dim[] }[];
  outputs: string[];
  nodes: NodeSpec[];
  initializers?: TensorProto[];
  opset?: number;
}

/** A model from a compact description; outputs are declared without shape, as float unless `outputTypes` says otherwise. */
export function buildModel(spec: ModelSpec, outputTypes: Record<string, DataType> = {}): ModelProto {
  const graph = create(GraphProtoSchema, {
    name: 'test',
    input: spec.inputs.map((i) => toValueInfo(i.name, { dataType: i.dataType, dims: i.dims })),
    output: spec.outputs.map((name) => toValueInfo(name, { dataType: outputTypes[name] ?? DataType.FLOAT, dims: undefined })),
    initializer: spec.initializers ?? [],
    node: spec.nodes.map((n, i) =>
      create(NodeProtoSchema, {
        name: n.name ?? `${n.op}_${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes ?? {}).map(([k, v]) =>
          makeAttribute(k, v, n.floatAttributes?.includes(k) ?? false),
        ),
      }),
    ),
  });
  return makeModel(graph, { opset: spec.opset ?? 17, producerName: 'open-autoglm-tests' });
}

/** Deterministic pseudo-random data (a linear congruential generator) in [-1, 1). */
export function randomArray(length: number, seed = 1): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The ORT tensor type name of an ONNX data type, for the types the tests feed. */
export function ortType(dataType: DataType): 'float32' | 'int64' | 'int32' | 'bool' {
  switch (dataType) {
    case DataType.INT64:
      return 'int64';
    case DataType.INT32:
      return 'int32';
    case DataType.BOOL:
      return 'bool';
    default:
      return 'float32';
  }
}
