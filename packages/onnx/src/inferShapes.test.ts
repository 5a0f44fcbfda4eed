import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { makeNode } from './OnnxGraph.js';
import { DataType } from './proto.js';
import { broadcastShapes, type Dim, inferShapes, toValueInfo, writeInferredShapes } from './inferShapes.js';
import { arrayToTensor, elementCount } from './tensor.js';
import {
  buildModel,
  exposeTensors,
  FIXTURE_MODELS,
  fixtureInputs,
  loadFixture,
  type ModelSpec,
  randomArray,
  runModel,
} from './test-support/testModels.js';

const INT64_MAX = 9223372036854775807n;
const i64 = (name: string, values: (number | bigint)[], dims: number[] = [values.length]) =>
  arrayToTensor(name, new BigInt64Array(values.map((v) => BigInt(v))), dims);
const f32 = (name: string, values: number[], dims: number[] = [values.length]) =>
  arrayToTensor(name, new Float32Array(values), dims);
const x = (...dims: number[]) => ({ name: 'x', dataType: DataType.FLOAT, dims });

/** One-op (or few-op) models whose output shapes are checked against what onnxruntime computes. */
const CASES: Record<string, ModelSpec> = {
  'Conv with group, strides, asymmetric pads and dilations': {
    inputs: [x(2, 4, 11, 9)],
    initializers: [f32('w', Array.from(randomArray(6 * 2 * 9)), [6, 2, 3, 3])],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attributes: { group: 2, strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2] } }],
    outputs: ['y'],
  },
  'Conv with auto_pad SAME_UPPER': {
    inputs: [x(1, 3, 10, 7)],
    initializers: [f32('w', Array.from(randomArray(5 * 3 * 9)), [5, 3, 3, 3])],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attributes: { strides: [2, 2], auto_pad: 'SAME_UPPER' } }],
    outputs: ['y'],
  },
  'ConvTranspose with strides, pads and output_padding': {
    inputs: [x(1, 4, 5, 6)],
    initializers: [f32('w', Array.from(randomArray(4 * 3 * 9)), [4, 3, 3, 3])],
    nodes: [
      { op: 'ConvTranspose', inputs: ['x', 'w'], outputs: ['y'], attributes: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] } },
    ],
    outputs: ['y'],
  },
  // With ceil_mode the last window must start inside the input: ORT's kernels (and PyTorch) drop
  // it, ONNX's own shape inference does not (ORT warns that its expected 6x5 became 6x4).
  'MaxPool and AveragePool with ceil_mode': {
    inputs: [x(1, 2, 10, 11)],
    nodes: [
      { op: 'MaxPool', inputs: ['x'], outputs: ['m', 'i'], attributes: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
      { op: 'AveragePool', inputs: ['x'], outputs: ['a'], attributes: { kernel_shape: [3, 2], strides: [2, 3], pads: [1, 1, 1, 1], ceil_mode: 1 } },
      { op: 'GlobalMaxPool', inputs: ['x'], outputs: ['g'] },
    ],
    outputs: ['m', 'i', 'a', 'g'],
  },
  'Gemm with transA and transB': {
    inputs: [x(5, 3)],
    initializers: [f32('b', Array.from(randomArray(20)), [4, 5]), f32('c', [1, 2, 3, 4], [4])],
    nodes: [{ op: 'Gemm', inputs: ['x', 'b', 'c'], outputs: ['y'], attributes: { transA: 1, transB: 1 } }],
    outputs: ['y'],
  },
  'MatMul with batch broadcasting and 1-D operands': {
    inputs: [x(2, 1, 3, 4)],
    initializers: [f32('b', Array.from(randomArray(120)), [5, 4, 6]), f32('v', [1, 2, 3, 4])],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'b'], outputs: ['y'] },
      { op: 'MatMul', inputs: ['v', 'b'], outputs: ['z'] },
      { op: 'MatMul', inputs: ['x', 'v'], outputs: ['w'] },
    ],
    outputs: ['y', 'z', 'w'],
  },
  'Reshape with 0 and -1, Flatten, Transpose': {
    inputs: [x(2, 3, 4, 5)],
    initializers: [i64('s', [0, -1, 5])],
    nodes: [
      { op: 'Reshape', inputs: ['x', 's'], outputs: ['r'] },
      { op: 'Flatten', inputs: ['x'], outputs: ['f2'], attributes: { axis: 2 } },
      { op: 'Flatten', inputs: ['x'], outputs: ['f0'], attributes: { axis: 0 } },
      { op: 'Transpose', inputs: ['x'], outputs: ['t'] },
      { op: 'Transpose', inputs: ['x'], outputs: ['t2'], attributes: { perm: [0, 2, 3, 1] } },
    ],
    outputs: ['r', 'f2', 'f0', 't', 't2'],
  },
  'Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain': {
    inputs: [x(2, 6, 8)],
    initializers: [i64('zero', [0], []), i64('tail', [-1, 4]), i64('axes0', [0])],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['shape'] },
      { op: 'Gather', inputs: ['shape', 'zero'], outputs: ['n'] },
      { op: 'Unsqueeze', inputs: ['n', 'axes0'], outputs: ['n1'] },
      { op: 'Concat', inputs: ['n1', 'tail'], outputs: ['target'], attributes: { axis: 0 } },
      { op: 'Reshape', inputs: ['x', 'target'], outputs: ['y'] },
      { op: 'Shape', inputs: ['x'], outputs: ['inner'], attributes: { start: 1, end: -1 } },
      { op: 'Size', inputs: ['x'], outputs: ['size'] },
    ],
    outputs: ['y', 'inner', 'size'],
  },
  'Gather on a middle axis with 2-D indices, GatherElements': {
    inputs: [x(4, 5, 6)],
    initializers: [i64('idx', [0, 1, 2, 4, 3, 0], [2, 3]), i64('eshape', [4, 5, 2])],
    nodes: [
      { op: 'Gather', inputs: ['x', 'idx'], outputs: ['y'], attributes: { axis: 1 } },
      { op: 'ConstantOfShape', inputs: ['eshape'], outputs: ['e'], attributes: { value: i64('v', [1], [1]) } },
      { op: 'GatherElements', inputs: ['x', 'e'], outputs: ['z'], attributes: { axis: 2 } },
    ],
    outputs: ['y', 'z'],
  },
  'Unsqueeze and Squeeze with axes inputs, Squeeze without axes': {
    inputs: [x(3, 1, 4)],
    initializers: [i64('ua', [0, -1]), i64('sa', [1])],
    nodes: [
      { op: 'Unsqueeze', inputs: ['x', 'ua'], outputs: ['u'] },
      { op: 'Squeeze', inputs: ['x', 'sa'], outputs: ['s'] },
      { op: 'Squeeze', inputs: ['u'], outputs: ['all'] },
    ],
    outputs: ['u', 's', 'all'],
  },
  'Concat on a negative axis and Split three ways': {
    inputs: [x(6, 5, 2)],
    initializers: [f32('c', Array.from(randomArray(6 * 5 * 3)), [6, 5, 3]), i64('sizes', [2, 3])],
    nodes: [
      { op: 'Concat', inputs: ['x', 'c'], outputs: ['y'], attributes: { axis: -1 } },
      { op: 'Split', inputs: ['x', 'sizes'], outputs: ['s1', 's2'], attributes: { axis: 1 } },
      { op: 'Split', inputs: ['y'], outputs: ['e1', 'e2', 'e3'], attributes: { axis: 0 } },
    ],
    outputs: ['y', 's1', 's2', 'e1'],
  },
  'Split with an uneven num_outputs (opset 18)': {
    inputs: [x(7, 2)],
    nodes: [{ op: 'Split', inputs: ['x'], outputs: ['a', 'b', 'c'], attributes: { num_outputs: 3 } }],
    outputs: ['a', 'b', 'c'],
    opset: 18,
  },
  'Slice with negative indices, huge ends and negative steps': {
    inputs: [x(7, 3, 9)],
    initializers: [i64('starts', [1, -1]), i64('ends', [INT64_MAX, -10]), i64('axes', [0, 2]), i64('steps', [2, -2])],
    nodes: [{ op: 'Slice', inputs: ['x', 'starts', 'ends', 'axes', 'steps'], outputs: ['y'] }],
    outputs: ['y'],
  },
  'ConstantOfShape, Expand, Range, Tile': {
    inputs: [x(3, 1)],
    initializers: [
      i64('shape', [2, 1, 4]),
      f32('start', [0], []),
      f32('limit', [10], []),
      f32('delta', [3], []),
      i64('reps', [2, 5]),
    ],
    nodes: [
      { op: 'ConstantOfShape', inputs: ['shape'], outputs: ['c'] },
      { op: 'Expand', inputs: ['x', 'shape'], outputs: ['e'] },
      { op: 'Range', inputs: ['start', 'limit', 'delta'], outputs: ['r'] },
      { op: 'Tile', inputs: ['x', 'reps'], outputs: ['t'] },
    ],
    outputs: ['c', 'e', 'r', 't'],
  },
  'Reductions with axes as attribute and as input': {
    inputs: [x(2, 3, 4, 5)],
    initializers: [i64('axes', [1, -1])],
    nodes: [
      { op: 'ReduceMean', inputs: ['x'], outputs: ['mean'], attributes: { axes: [2], keepdims: 0 } },
      { op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['sum'] },
      { op: 'ReduceMax', inputs: ['x'], outputs: ['max'], attributes: { keepdims: 0 } },
      { op: 'ArgMax', inputs: ['x'], outputs: ['arg'], attributes: { axis: 1, keepdims: 0 } },
    ],
    outputs: ['mean', 'sum', 'max', 'arg'],
  },
  'ReduceMin with axes input (opset 18)': {
    inputs: [x(2, 3, 4)],
    initializers: [i64('axes', [0, 2])],
    nodes: [{ op: 'ReduceMin', inputs: ['x', 'axes'], outputs: ['y'], attributes: { keepdims: 1 } }],
    outputs: ['y'],
    opset: 18,
  },
  'Pad, Resize by scales and by sizes, DepthToSpace': {
    inputs: [x(1, 4, 4, 6)],
    initializers: [
      i64('pads', [0, 0, 1, 2, 0, 0, 3, 0]),
      f32('scales', [1, 1, 2, 1.5]),
      i64('sizes', [1, 4, 7, 3]),
    ],
    nodes: [
      { op: 'Pad', inputs: ['x', 'pads'], outputs: ['p'] },
      { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['rs'] },
      { op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['rz'] },
      { op: 'DepthToSpace', inputs: ['x'], outputs: ['d'], attributes: { blocksize: 2 } },
    ],
    outputs: ['p', 'rs', 'rz', 'd'],
  },
  'TopK with constant k': {
    inputs: [x(3, 8)],
    initializers: [i64('k', [3])],
    nodes: [{ op: 'TopK', inputs: ['x', 'k'], outputs: ['values', 'indices'] }],
    outputs: ['values', 'indices'],
  },
  'QuantizeLinear and DequantizeLinear': {
    inputs: [x(2, 3)],
    initializers: [f32('s', [0.1], []), arrayToTensor('zp', new Uint8Array([128]), [])],
    nodes: [
      { op: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'] },
      { op: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['dq'] },
    ],
    outputs: ['q', 'dq'],
  },
  'Broadcasting elementwise ops, Equal, Where, Cast': {
    inputs: [x(3, 1, 5)],
    initializers: [f32('b', Array.from(randomArray(4 * 1)), [4, 1]), f32('half', [0.5], [])],
    nodes: [
      { op: 'Add', inputs: ['x', 'b'], outputs: ['add'] },
      { op: 'Sub', inputs: ['b', 'x'], outputs: ['sub'] },
      { op: 'Pow', inputs: ['x', 'half'], outputs: ['pow'] },
      { op: 'Equal', inputs: ['x', 'b'], outputs: ['eq'] },
      { op: 'Where', inputs: ['eq', 'x', 'half'], outputs: ['where'] },
      { op: 'Cast', inputs: ['eq'], outputs: ['cast'], attributes: { to: DataType.INT32 } },
    ],
    outputs: ['add', 'sub', 'pow', 'eq', 'where', 'cast'],
  },
  'Activations and normalizations': {
    inputs: [x(2, 3, 4)],
    initializers: [f32('lo', [-0.5], []), f32('hi', [0.5], []), f32('g', [1, 1, 1, 1]), f32('beta', [0, 0, 0, 0])],
    nodes: [
      { op: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['clip'] },
      { op: 'LeakyRelu', inputs: ['x'], outputs: ['leaky'], attributes: { alpha: 0.1 }, floatAttributes: ['alpha'] },
      { op: 'HardSigmoid', inputs: ['x'], outputs: ['hs'] },
      { op: 'Sigmoid', inputs: ['x'], outputs: ['sig'] },
      { op: 'Sqrt', inputs: ['sig'], outputs: ['sqrt'] },
      { op: 'Dropout', inputs: ['x'], outputs: ['drop', 'mask'] },
      { op: 'Softmax', inputs: ['x'], outputs: ['soft'], attributes: { axis: 1 } },
      { op: 'LayerNormalization', inputs: ['x', 'g', 'beta'], outputs: ['ln', 'lnmean', 'lninv'] },
      { op: 'Erf', inputs: ['x'], outputs: ['erf'] },
      { op: 'Tanh', inputs: ['x'], outputs: ['tanh'] },
      { op: 'GlobalAveragePool', inputs: ['x'], outputs: ['gap'] },
    ],
    outputs: ['clip', 'leaky', 'hs', 'sqrt', 'drop', 'mask', 'soft', 'ln', 'lnmean', 'lninv', 'erf', 'tanh', 'gap'],
  },
  'Gelu (opset 20)': {
    inputs: [x(2, 3)],
    nodes: [{ op: 'Gelu', inputs: ['x'], outputs: ['y'] }],
    outputs: ['y'],
    opset: 20,
  },
};

/** Builds the case with its outputs typed as inferred, runs it in ORT, and compares every output. */
async function expectOrtShapes(spec: ModelSpec): Promise<void> {
  const inferred = inferShapes(buildModel(spec));
  expect(inferred.unsupported).toEqual([]);
  expect(inferred.unresolved).toEqual([]);
  const types = Object.fromEntries(spec.outputs.map((o) => [o, inferred.shapes.get(o)?.dataType ?? DataType.UNDEFINED]));
  const feeds = Object.fromEntries(
    spec.inputs.map((i) => {
      const dims = i.dims as number[];
      return [i.name, new ort.Tensor('float32', randomArray(elementCount(dims)), dims)];
    }),
  );
  const outputs = await runModel(buildModel(spec, types), feeds);
  for (const name of spec.outputs) {
    expect({ name, dims: inferred.shapes.get(name)?.dims }).toEqual({ name, dims: [...(outputs[name]?.dims ?? [])] });
  }
}

describe('inferShapes', () => {
  for (const [title, spec] of Object.entries(CASES)) {
    it(`should match onnxruntime for ${title}`, async () => {
      await expectOrtShapes(spec);
    });
  }

  for (const name of FIXTURE_MODELS) {
    it(`should infer the output shape of ${name} for batch 1 and 3 as onnxruntime computes it`, async () => {
      const model = loadFixture(name);
      const symbolic = inferShapes(model);
      expect(symbolic.unsupported).toEqual([]);
      expect(symbolic.unresolved).toEqual([]);
      const output = model.graph?.output[0]?.name ?? '';
      expect(symbolic.shapes.get(output)).toEqual({ dataType: DataType.FLOAT, dims: ['batch', name === 'tinybert-spam' ? 2 : 10] });
      for (const batch of [1, 3]) {
        const bound = inferShapes(model, { dims: { batch } });
        const result = await runModel(model, fixtureInputs(name, batch));
        expect(bound.shapes.get(output)?.dims).toEqual([...(result[output]?.dims ?? [])]);
      }
    });

    it(`should infer every intermediate tensor of ${name} as onnxruntime computes it`, async () => {
      const model = loadFixture(name);
      const inferred = inferShapes(model, { dims: { batch: 3 } });
      const tensors = new Map<string, DataType>();
      for (const node of model.graph?.node ?? []) {
        for (const o of node.output) tensors.set(o, inferred.shapes.get(o)?.dataType ?? DataType.UNDEFINED);
      }
      // ORT checks each exposed output's element type against its own inference, so types are verified too.
      const result = await runModel(exposeTensors(model, tensors), fixtureInputs(name, 3));
      const mismatches = [...tensors.keys()].filter(
        (t) => JSON.stringify(inferred.shapes.get(t)?.dims) !== JSON.stringify(result[t]?.dims),
      );
      expect(mismatches).toEqual([]);
      expect(tensors.size).toBeGreaterThan(10);
    });
  }

  it('should keep the batch symbol through the transformer reshapes of tinybert', () => {
    const { shapes } = inferShapes(loadFixture('tinybert-spam'));
    expect(shapes.get('/layers.0/attn/Reshape_output_0')?.dims).toEqual(['batch', 128, 2, 32]);
    expect(shapes.get('/layers.0/attn/Transpose_2_output_0')?.dims).toEqual(['batch', 2, 32, 128]);
    expect(shapes.get('/layers.0/attn/MatMul_output_0')?.dims).toEqual(['batch', 2, 128, 128]);
    expect(shapes.get('/Unsqueeze_1_output_0')?.dims).toEqual(['batch', 1, 1, 128]);
    expect(shapes.get('/Equal_output_0')?.dataType).toBe(DataType.BOOL);
    expect(shapes.get('/Gather_output_0')?.dims).toEqual(['batch', 64]);
  });

  it('should resolve a Reshape whose target shape is computed from a symbolic Shape', () => {
    const spec = CASES['Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain'] as ModelSpec;
    const model = buildModel({ ...spec, inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['n', 6, 8] }] });
    const { shapes } = inferShapes(model);
    expect(shapes.get('target')?.dims).toEqual([3]);
    expect(shapes.get('y')?.dims).toEqual(['n', 12, 4]);
    expect(shapes.get('inner')?.dims).toEqual([1]);
  });

  it('should infer -1 of a Reshape from symbolic dims when the symbols cancel', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['b', 's', 64] }],
      initializers: [i64('merge', [-1, 64]), i64('split', [0, 0, 2, -1]), i64('unknown', [-1, 32])],
      nodes: [
        { op: 'Reshape', inputs: ['x', 'split'], outputs: ['heads'] },
        { op: 'Reshape', inputs: ['x', 'unknown'], outputs: ['flat'] },
        { op: 'Flatten', inputs: ['x'], outputs: ['f'], attributes: { axis: 1 } },
      ],
      outputs: ['heads', 'flat', 'f'],
    });
    const { shapes } = inferShapes(model);
    expect(shapes.get('heads')?.dims).toEqual(['b', 's', 2, 32]);
    // b*s*2 is not a single symbol: unknown rather than guessed.
    expect(shapes.get('flat')?.dims).toEqual([null, 32]);
    expect(shapes.get('f')?.dims).toEqual(['b', null]);
  });

  it('should carry symbolic dims through Concat, Slice, Expand, Pad, Conv and pooling', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['n', 3, 'h', 8] }],
      initializers: [
        f32('w', new Array<number>(4 * 3 * 9).fill(0), [4, 3, 3, 3]),
        i64('starts', [0, 2]),
        i64('ends', [INT64_MAX, 6]),
        i64('axes', [2, 3]),
        i64('target', [1, 1, 1, 1]),
        i64('pads', [0, 0, 0, 1, 0, 0, 0, 1]),
      ],
      nodes: [
        { op: 'Concat', inputs: ['x', 'x'], outputs: ['cat'], attributes: { axis: 1 } },
        { op: 'Concat', inputs: ['x', 'x'], outputs: ['cat_h'], attributes: { axis: 2 } },
        { op: 'Slice', inputs: ['x', 'starts', 'ends', 'axes'], outputs: ['sl'] },
        { op: 'Expand', inputs: ['x', 'target'], outputs: ['ex'] },
        { op: 'Pad', inputs: ['x', 'pads'], outputs: ['pad'] },
        { op: 'Conv', inputs: ['x', 'w'], outputs: ['conv'], attributes: { pads: [1, 1, 1, 1] } },
        { op: 'MaxPool', inputs: ['x'], outputs: ['pool'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
        { op: 'GlobalAveragePool', inputs: ['x'], outputs: ['gap'] },
      ],
      outputs: ['cat'],
    });
    const { shapes } = inferShapes(model);
    expect(shapes.get('cat')?.dims).toEqual(['n', 6, 'h', 8]);
    expect(shapes.get('cat_h')?.dims).toEqual(['n', 3, null, 8]);
    expect(shapes.get('sl')?.dims).toEqual(['n', 3, 'h', 4]);
    expect(shapes.get('ex')?.dims).toEqual(['n', 3, 'h', 8]);
    expect(shapes.get('pad')?.dims).toEqual(['n', 3, 'h', 10]);
    // A 3x3 kernel with padding 1 keeps the size, but only a number can say so: unknown.
    expect(shapes.get('conv')?.dims).toEqual(['n', 4, null, 8]);
    expect(shapes.get('pool')?.dims).toEqual(['n', 3, null, 4]);
    expect(shapes.get('gap')?.dims).toEqual(['n', 3, 1, 1]);
    expect(inferShapes(model, { dims: { h: 6 } }).shapes.get('conv')?.dims).toEqual(['n', 4, 6, 8]);
  });

  it('should report ops without a rule and keep going with unknown outputs', () => {
    const model = buildModel({
      inputs: [x(2, 3)],
      nodes: [
        { op: 'Einsum', inputs: ['x'], outputs: ['e'], attributes: { equation: 'ij->ji' } },
        { op: 'Relu', inputs: ['e'], outputs: ['r'] },
        { op: 'Relu', inputs: ['x'], outputs: ['ok'] },
      ],
      outputs: ['r', 'ok'],
    });
    model.graph?.node.push(makeNode('FusedGemm', ['x', 'x'], ['ms'], {}, 'fused', 'com.microsoft'));
    const result = inferShapes(model);
    expect(result.unsupported.map((u) => u.opType)).toEqual(['Einsum', 'FusedGemm']);
    expect(result.unsupported[1]?.reason).toMatch(/domain "com.microsoft"/);
    expect(result.shapes.get('r')?.dims).toBeUndefined();
    expect(result.shapes.get('ok')?.dims).toEqual([2, 3]);
  });

  it('should fall back to declared value_info for outputs it cannot infer', () => {
    const model = buildModel({
      inputs: [x(2, 3)],
      nodes: [
        { op: 'Einsum', inputs: ['x'], outputs: ['e'], attributes: { equation: 'ij->ji' } },
        { op: 'Relu', inputs: ['e'], outputs: ['r'] },
      ],
      outputs: ['r'],
    });
    model.graph?.valueInfo.push(toValueInfo('e', { dataType: DataType.FLOAT, dims: [3, 2] }));
    const result = inferShapes(model);
    expect(result.unsupported.map((u) => u.opType)).toEqual(['Einsum']);
    expect(result.shapes.get('e')).toEqual({ dataType: DataType.FLOAT, dims: [3, 2] });
    expect(result.shapes.get('r')).toEqual({ dataType: DataType.FLOAT, dims: [3, 2] });
  });

  it('should refuse shapes that cannot broadcast, naming the node', () => {
    const model = buildModel({
      inputs: [x(2, 3)],
      initializers: [f32('b', [1, 2, 3, 4], [4])],
      nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['y'], name: 'bad_add' }],
      outputs: ['y'],
    });
    expect(() => inferShapes(model)).toThrow(/Add node "bad_add".*cannot be broadcast/);
    const reshape = buildModel({
      inputs: [x(2, 3)],
      initializers: [i64('s', [-2, 3])],
      nodes: [{ op: 'Reshape', inputs: ['x', 's'], outputs: ['y'], name: 'bad_reshape' }],
      outputs: ['y'],
    });
    expect(() => inferShapes(reshape)).toThrow(/Reshape node "bad_reshape": the target shape \[-2, 3\] has the invalid size -2/);
  });

  it('should not treat an initializer that is also a graph input as a constant shape', () => {
    const model = buildModel({
      inputs: [x(2, 3), { name: 's', dataType: DataType.INT64, dims: [2] }],
      initializers: [i64('s', [3, 2])],
      nodes: [{ op: 'Reshape', inputs: ['x', 's'], outputs: ['y'] }],
      outputs: ['y'],
    });
    const result = inferShapes(model);
    expect(result.shapes.get('y')?.dims).toEqual([null, null]);
    expect(result.unresolved.map((u) => u.reason)).toEqual(['the target shape is computed at run time']);
  });
});

describe('broadcastShapes', () => {
  it('should follow numpy rules with symbolic dims', () => {
    const cases: [Dim[], Dim[], Dim[]][] = [
      [['batch', 1, 1, 128], [2, 128, 1], ['batch', 2, 128, 128]],
      [['b', 1], [3], ['b', 3]],
      [['b'], ['b'], ['b']],
      [['a'], ['b'], [null]],
      [['a'], [4], [4]],
      [[null, 1], [1, 5], [null, 5]],
      [[], [2, 2], [2, 2]],
    ];
    for (const [a, b, expected] of cases) expect(broadcastShapes([a, b])).toEqual(expected);
    expect(broadcastShapes([[2], undefined])).toBeUndefined();
  });
});

describe('writeInferredShapes', () => {
  it('should write intermediate shapes into value_info and leave the signature alone', async () => {
    const model = loadFixture('lenet5-fmnist');
    const inference = inferShapes(model);
    const written = writeInferredShapes(model, inference);
    const graph = model.graph;
    expect(written).toBe(13);
    expect(graph?.valueInfo.length).toBe(13);
    const conv = graph?.valueInfo.find((v) => v.name === '/conv1/Conv_output_0');
    expect(conv?.type?.value.case).toBe('tensorType');
    const re = inferShapes(model);
    expect(re.shapes.get('/conv1/Conv_output_0')?.dims).toEqual(['batch', 6, 28, 28]);
    // ORT accepts the annotated model and still computes the same logits shape.
    const out = await runModel(model, fixtureInputs('lenet5-fmnist', 2));
    expect(out['logits']?.dims).toEqual([2, 10]);
  });
});
