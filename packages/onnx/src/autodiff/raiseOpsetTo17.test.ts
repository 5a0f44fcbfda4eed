import { UnsupportedOperationError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../OnnxModel.js';
import { DataType, type ModelProto } from '../proto.js';
import { buildModel, randomArray, relativeDifference, runModel } from '../test-support/testModels.js';
import { raiseOpsetTo17 } from './raiseOpsetTo17.js';

/** x [2, 3, 4] through every op whose signature changed between opsets 11 and 13. */
function oldModel(opset: number, softmaxAxis = 2): ModelProto {
  return buildModel({
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 3, 4] }],
    outputs: ['y'],
    nodes: [
      { op: 'Unsqueeze', inputs: ['x'], outputs: ['u'], attributes: { axes: [0] } },
      { op: 'Squeeze', inputs: ['u'], outputs: ['s'], attributes: { axes: [0] } },
      { op: 'Split', inputs: ['s'], outputs: ['a', 'b'], attributes: { axis: 2, split: [1, 3] } },
      { op: 'ReduceSum', inputs: ['b'], outputs: ['r'], attributes: { axes: [2], keepdims: 1 } },
      { op: 'Add', inputs: ['a', 'r'], outputs: ['t'] },
      { op: 'Mul', inputs: ['t', 's'], outputs: ['m'] },
      { op: 'Softmax', inputs: ['m'], outputs: ['p'], attributes: { axis: softmaxAxis } },
      { op: 'Dropout', inputs: ['p'], outputs: ['y'], attributes: { ratio: 0.3 }, floatAttributes: ['ratio'] },
    ],
    opset,
  });
}

describe('raiseOpsetTo17', () => {
  it('should rewrite opset 11 ops so that the model computes the same at opset 17', async () => {
    const source = oldModel(11);
    const raised = new OnnxModel(source).clone();
    raiseOpsetTo17(raised);
    expect(raised.opsetVersion()).toBe(17);
    expect(raised.problems()).toEqual([]);
    for (const node of raised.graph.nodes) expect(node.attribute.map((a) => a.name)).not.toContain('axes');
    const feeds = { x: new ort.Tensor('float32', randomArray(24, 4), [2, 3, 4]) };
    const before = await runModel(source, feeds);
    const after = await runModel(raised.proto, feeds);
    expect(relativeDifference(before.y as ort.Tensor, after.y as ort.Tensor)).toBeLessThan(1e-6);
  });

  it('should refuse softmaxes over several axes and models older than opset 11', () => {
    expect(() => raiseOpsetTo17(new OnnxModel(oldModel(11, 1)))).toThrow(UnsupportedOperationError);
    expect(() => raiseOpsetTo17(new OnnxModel(oldModel(11, 1)))).toThrow(/"Softmax_6" \(Softmax\).*every axis from 1 on of a rank-3 input/);
    expect(() => raiseOpsetTo17(new OnnxModel(oldModel(10)))).toThrow(/opset 10.*from opset 11 on/);
  });

  it('should leave models of opset 17 and newer alone', () => {
    const model = new OnnxModel(buildModel({ inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2] }], outputs: ['y'], nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], opset: 20 }));
    raiseOpsetTo17(model);
    expect(model.opsetVersion()).toBe(20);
  });
});
