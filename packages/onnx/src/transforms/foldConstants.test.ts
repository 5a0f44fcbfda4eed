import { clone } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DataType, type ModelProto, ModelProtoSchema } from '../proto.js';
import { inferShapes } from '../inferShapes.js';
import { arrayToTensor } from '../tensor.js';
import { foldConstants } from './foldConstants.js';
import {
  buildModel,
  FIXTURE_MODELS,
  fixtureInputs,
  loadFixture,
  type ModelSpec,
  randomArray,
  relativeDifference,
  runModel,
} from '../test-support/testModels.js';

const i64 = (name: string, values: number[], dims: number[] = [values.length]) =>
  arrayToTensor(name, BigInt64Array.from(values, BigInt), dims);

/** x -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 2] + [0, 2])): a typical exported dynamic reshape. */
function dynamicReshape(batch: number | string): ModelSpec {
  return {
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [batch, 6, 8] }],
    initializers: [i64('zero', [0], []), i64('tail', [-1, 2]), i64('axes0', [0]), i64('two', [0, 2])],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['shape'], name: 'shape' },
      { op: 'Gather', inputs: ['shape', 'zero'], outputs: ['n'], name: 'gather' },
      { op: 'Unsqueeze', inputs: ['n', 'axes0'], outputs: ['n1'], name: 'unsqueeze' },
      { op: 'Add', inputs: ['tail', 'two'], outputs: ['tail2'], name: 'add' },
      { op: 'Concat', inputs: ['n1', 'tail2'], outputs: ['target'], attributes: { axis: 0 }, name: 'concat' },
      { op: 'Reshape', inputs: ['x', 'target'], outputs: ['y'], name: 'reshape' },
    ],
    outputs: ['y'],
  };
}

async function expectSameOutput(before: ModelProto, after: ModelProto, dims: number[]): Promise<void> {
  const feeds = { x: new ort.Tensor('float32', randomArray(dims.reduce((a, b) => a * b, 1)), dims) };
  const [a, b] = [(await runModel(before, feeds))['y'], (await runModel(after, feeds))['y']];
  expect(b?.dims).toEqual(a?.dims);
  expect(Array.from(b?.data as Float32Array)).toEqual(Array.from(a?.data as Float32Array));
}

describe('foldConstants', () => {
  it('should fold a Shape-driven reshape chain when the input shape is static', async () => {
    const model = buildModel(dynamicReshape(3));
    const folded = clone(ModelProtoSchema, model);
    const report = foldConstants(folded);
    expect(report.foldedNodes).toEqual(['shape', 'gather', 'unsqueeze', 'add', 'concat']);
    expect(report.addedInitializers).toEqual(['target']);
    expect(report.removedInitializers.sort()).toEqual(['axes0', 'tail', 'two', 'zero']);
    expect(folded.graph?.node.map((n) => n.name)).toEqual(['reshape']);
    expect(folded.graph?.initializer.map((t) => t.name)).toEqual(['target']);
    expect(inferShapes(folded).shapes.get('y')?.dims).toEqual([3, 12, 4]);
    await expectSameOutput(model, folded, [3, 6, 8]);
  });

  it('should keep the Shape chain of a symbolic batch and fold only what is constant', async () => {
    const model = buildModel(dynamicReshape('batch'));
    const folded = clone(ModelProtoSchema, model);
    const report = foldConstants(folded);
    expect(report.foldedNodes).toEqual(['add']);
    expect(folded.graph?.node.map((n) => n.name)).toEqual(['shape', 'gather', 'unsqueeze', 'concat', 'reshape']);
    await expectSameOutput(model, folded, [5, 6, 8]);
  });

  for (const name of FIXTURE_MODELS) {
    it(`should keep the outputs of ${name} unchanged`, async () => {
      const model = loadFixture(name);
      const folded = clone(ModelProtoSchema, model);
      const report = foldConstants(folded);
      const feeds = fixtureInputs(name, 16);
      const [before, after] = [(await runModel(model, feeds))['logits'], (await runModel(folded, feeds))['logits']];
      if (before === undefined || after === undefined) throw new Error('no logits');
      expect(relativeDifference(before, after)).toBe(0);
      if (name === 'tinybert-spam') {
        // Its 21 Constant nodes become initializers; Reshape/Transpose chains read them unchanged.
        expect(report.foldedNodes.length).toBe(21);
        expect(folded.graph?.node.length).toBe(80);
        expect(folded.graph?.node.some((n) => n.opType === 'Constant')).toBe(false);
      }
      if (name === 'resnet8-fmnist') {
        // The two Identity aliases of BatchNorm biases become initializers of their own.
        expect(report.addedInitializers.sort()).toEqual(['layer2.shortcut.1.bias', 'layer3.shortcut.1.bias']);
      }
    });
  }

  it('should leave a folded tensor that would bloat the file to run time', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [1] }],
      initializers: [i64('big', [512, 512])],
      nodes: [
        { op: 'ConstantOfShape', inputs: ['big'], outputs: ['zeros'], name: 'fill' },
        { op: 'Add', inputs: ['x', 'zeros'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    const report = foldConstants(model);
    expect(report.leftTooLarge).toEqual(['fill']);
    expect(report.foldedNodes).toEqual([]);
    expect(foldConstants(model, { maxOutputElements: 512 * 512 }).foldedNodes).toEqual(['fill']);
  });

  it('should keep nodes that produce graph outputs', () => {
    const model = buildModel(
      {
        inputs: [],
        initializers: [i64('a', [1, 2])],
        nodes: [{ op: 'Add', inputs: ['a', 'a'], outputs: ['y'] }],
        outputs: ['y'],
      },
      { y: DataType.INT64 },
    );
    expect(foldConstants(model).foldedNodes).toEqual([]);
    expect(model.graph?.node.length).toBe(1);
  });

  it('should also list new initializers as graph inputs for IR versions before 4', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2] }],
      nodes: [
        { op: 'Constant', inputs: [], outputs: ['c'], attributes: { value: arrayToTensor('v', new Float32Array([1, 2]), [2]) } },
        { op: 'Add', inputs: ['x', 'c'], outputs: ['y'] },
      ],
      outputs: ['y'],
    });
    model.irVersion = 3n;
    expect(foldConstants(model).addedInitializers).toEqual(['c']);
    expect(model.graph?.input.map((i) => i.name)).toEqual(['x', 'c']);
  });
});
