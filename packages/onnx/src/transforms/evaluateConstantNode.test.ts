import { describe, expect, it } from 'vitest';
import { makeNode } from '../OnnxGraph.js';
import { DataType, type TensorProto } from '../proto.js';
import { arrayToTensor, tensorDims, tensorToArray } from '../tensor.js';
import { type ConstantTensor, evaluateConstantNode } from './evaluateConstantNode.js';
import { buildModel, runModel } from '../test-support/testModels.js';

const i64 = (name: string, values: number[], dims: number[] = [values.length]) =>
  arrayToTensor(name, BigInt64Array.from(values, BigInt), dims);
const i32 = (name: string, values: number[], dims: number[] = [values.length]) =>
  arrayToTensor(name, Int32Array.from(values), dims);
const f32 = (name: string, values: number[], dims: number[] = [values.length]) =>
  arrayToTensor(name, Float32Array.from(values), dims);

interface Case {
  op: string;
  inputs: TensorProto[];
  attributes?: Record<string, number | number[] | TensorProto>;
  opset?: number;
}

const CASES: Record<string, Case> = {
  'Gather on axis 1 with 2-D and negative indices': {
    op: 'Gather',
    inputs: [i64('data', Array.from({ length: 24 }, (_, i) => i * 3 - 20), [2, 3, 4]), i64('idx', [2, -1, 0, 1], [2, 2])],
    attributes: { axis: 1 },
  },
  'Gather of a scalar index': { op: 'Gather', inputs: [i64('shape', [5, 7, 9]), i64('zero', [0], [])] },
  'Unsqueeze with negative axes': { op: 'Unsqueeze', inputs: [i64('x', [1, 2, 3, 4, 5, 6], [2, 3]), i64('axes', [-1, 0])] },
  'Squeeze of one axis': { op: 'Squeeze', inputs: [f32('x', [1, 2, 3, 4, 5, 6], [2, 1, 3]), i64('axes', [1])] },
  'Squeeze of every size-1 axis': { op: 'Squeeze', inputs: [f32('x', [1, 2, 3], [1, 3, 1])] },
  'Concat on axis 1': {
    op: 'Concat',
    inputs: [i64('a', [1, 2], [2, 1]), i64('b', [3, 4, 5, 6, 7, 8], [2, 3])],
    attributes: { axis: 1 },
  },
  'Reshape with 0 and -1': { op: 'Reshape', inputs: [i32('x', Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]), i64('s', [0, -1])] },
  'Cast float to int64 truncates toward zero': { op: 'Cast', inputs: [f32('x', [1.7, -1.7, 2.5, -0.4, 1e10])], attributes: { to: DataType.INT64 } },
  'Cast float to int32': { op: 'Cast', inputs: [f32('x', [1.7, -1.7, 2.5, -0.4])], attributes: { to: DataType.INT32 } },
  'Cast int64 to float': { op: 'Cast', inputs: [i64('x', [1, -3, 16777217])], attributes: { to: DataType.FLOAT } },
  'Cast float to bool': { op: 'Cast', inputs: [f32('x', [0, -0.5, 2, 0])], attributes: { to: DataType.BOOL } },
  'Slice on two axes with a negative step': {
    op: 'Slice',
    inputs: [
      i64('x', Array.from({ length: 20 }, (_, i) => i), [4, 5]),
      i64('starts', [-1, 1]),
      i64('ends', [-100, 1000]),
      i64('axes', [0, 1]),
      i64('steps', [-2, 2]),
    ],
  },
  'Slice with default axes and steps': { op: 'Slice', inputs: [f32('x', [1, 2, 3, 4, 5, 6], [2, 3]), i64('starts', [1, 0]), i64('ends', [2, 2])] },
  'Add int64 with broadcasting': { op: 'Add', inputs: [i64('a', [1, 2], [2, 1]), i64('b', [10, 20, 30])] },
  'Sub int64': { op: 'Sub', inputs: [i64('a', [1, 2, 3]), i64('b', [5])] },
  'Mul int32': { op: 'Mul', inputs: [i32('a', [3, -4, 5]), i32('b', [-2, 6, 7])] },
  'Div int64 truncates toward zero': { op: 'Div', inputs: [i64('a', [-7, 7, -8, 9]), i64('b', [2, -2, 3, 4])] },
  'Div int32 truncates toward zero': { op: 'Div', inputs: [i32('a', [-7, 7, -8]), i32('b', [2, -2, 3])] },
  'Div float32 rounds once': { op: 'Div', inputs: [f32('a', [1, 2, 10]), f32('b', [3, 7, 3])] },
  'Mul float32 with a scalar': { op: 'Mul', inputs: [f32('a', [0.1, 0.2, 0.7]), f32('b', [3], [])] },
  'ConstantOfShape with an int64 value': {
    op: 'ConstantOfShape',
    inputs: [i64('shape', [2, 3])],
    attributes: { value: i64('v', [7], [1]) },
  },
  'ConstantOfShape with the default value': { op: 'ConstantOfShape', inputs: [i64('shape', [4])] },
  'Range int64 counting down': { op: 'Range', inputs: [i64('s', [10], []), i64('l', [1], []), i64('d', [-3], [])] },
  'Range float32 accumulating': { op: 'Range', inputs: [f32('s', [0.1], []), f32('l', [1], []), f32('d', [0.3], [])] },
  'Shape with start and end': { op: 'Shape', inputs: [f32('x', new Array<number>(24).fill(0), [2, 3, 4])], attributes: { start: 1, end: -1 } },
  'Identity of a float tensor': { op: 'Identity', inputs: [f32('x', [1.5, -2])] },
};

function asConstant(t: TensorProto): ConstantTensor {
  return { dataType: t.dataType, dims: tensorDims(t), data: tensorToArray(t) };
}

describe('evaluateConstantNode', () => {
  for (const [title, c] of Object.entries(CASES)) {
    it(`should compute ${title} exactly as onnxruntime does`, async () => {
      const node = makeNode(c.op, c.inputs.map((t) => t.name), ['y'], c.attributes ?? {});
      const result = evaluateConstantNode(node, c.inputs.map(asConstant))?.[0];
      if (result === undefined) throw new Error('not evaluated');
      const model = buildModel(
        {
          inputs: [],
          initializers: c.inputs,
          nodes: [{ op: c.op, inputs: c.inputs.map((t) => t.name), outputs: ['y'], attributes: c.attributes ?? {} }],
          outputs: ['y'],
          opset: c.opset,
        },
        { y: result.dataType },
      );
      const reference = (await runModel(model, {}))['y'];
      expect(result.dims).toEqual(reference?.dims);
      const expected = Array.from(reference?.data as ArrayLike<number | bigint | boolean>, (v) => String(Number(v)));
      expect(Array.from(result.data as ArrayLike<number | bigint>, (v) => String(Number(v)))).toEqual(expected);
    });
  }

  it('should decline what it cannot compute rather than guess', () => {
    const div = makeNode('Div', ['a', 'b'], ['y']);
    expect(evaluateConstantNode(div, [asConstant(i64('a', [1])), asConstant(i64('b', [0]))])).toBeUndefined();
    const gather = makeNode('Gather', ['d', 'i'], ['y']);
    expect(evaluateConstantNode(gather, [asConstant(i64('d', [1, 2])), asConstant(i64('i', [2]))])).toBeUndefined();
    expect(evaluateConstantNode(makeNode('Pow', ['a', 'a'], ['y']), [asConstant(f32('a', [2])), asConstant(f32('a', [2]))])).toBeUndefined();
    expect(evaluateConstantNode(makeNode('Relu', ['a'], ['y']), [undefined])).toBeUndefined();
  });
});
