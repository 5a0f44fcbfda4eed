import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { makeModel } from './makeModel.js';
import { makeNode, makeTensorValueInfo } from './OnnxGraph.js';
import { OnnxModel } from './OnnxModel.js';
import { DataType } from './proto.js';

const addOne = {
  name: 'add-one',
  node: [makeNode('Add', ['x', 'one'], ['y'])],
  input: [makeTensorValueInfo('x', DataType.FLOAT, ['n', 2])],
  output: [makeTensorValueInfo('y', DataType.FLOAT, ['n', 2])],
  initializer: [],
};

describe('makeModel', () => {
  it('defaults to IR 8 and opset 17, and onnxruntime runs the result', async () => {
    const proto = makeModel({ ...addOne, node: [makeNode('Relu', ['x'], ['y'])] });
    expect(proto.irVersion).toBe(8n);
    expect(proto.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', 17n]]);
    expect(proto.producerName).toBe('');
    const session = await ort.InferenceSession.create(new OnnxModel(proto).toBytes());
    try {
      const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from([-1, 2]), [1, 2]) });
      expect(Array.from(y?.data as Float32Array)).toEqual([0, 2]);
    } finally {
      await session.release();
    }
  });

  it('writes the given opsets, IR version, producer and metadata', () => {
    const proto = makeModel(addOne, {
      opset: 13,
      extraOpsets: { 'com.microsoft': 1 },
      irVersion: 7,
      producerName: 'tests',
      metadata: { purpose: 'check' },
    });
    expect(proto.irVersion).toBe(7n);
    expect(proto.opsetImport.map((o) => [o.domain, o.version])).toEqual([['', 13n], ['com.microsoft', 1n]]);
    expect(proto.producerName).toBe('tests');
    expect(proto.metadataProps.map((p) => [p.key, p.value])).toEqual([['purpose', 'check']]);
    expect(proto.graph?.name).toBe('add-one');
  });
});
