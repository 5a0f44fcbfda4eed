import { clone } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxGraph } from '../OnnxGraph.js';
import { DataType, ModelProtoSchema } from '../proto.js';
import { arrayToTensor } from '../tensor.js';
import { removeDeadNodes, removeUnusedConstants } from './removeDeadNodes.js';
import {
  buildModel,
  FIXTURE_MODELS,
  fixtureInputs,
  loadFixture,
  randomArray,
  relativeDifference,
  runModel,
} from '../test-support/testModels.js';

const f32 = (name: string, values: number[]) => arrayToTensor(name, new Float32Array(values), [values.length]);

describe('removeDeadNodes', () => {
  it('should remove branches that reach no output and the initializers only they read', async () => {
    const model = buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 3] }],
      initializers: [f32('live_bias', [1, 2, 3]), f32('dead_bias', [4, 5, 6]), f32('unused', [7]), f32('shared', [1, 1, 1])],
      nodes: [
        { op: 'Add', inputs: ['x', 'live_bias'], outputs: ['a'], name: 'live_add' },
        { op: 'Mul', inputs: ['a', 'shared'], outputs: ['y'], name: 'live_mul' },
        { op: 'Add', inputs: ['x', 'dead_bias'], outputs: ['d1'], name: 'dead_add' },
        { op: 'Relu', inputs: ['d1'], outputs: ['d2'], name: 'dead_relu' },
        { op: 'Mul', inputs: ['d2', 'shared'], outputs: ['d3'], name: 'dead_mul' },
        // A node with several outputs, none of them read.
        { op: 'Dropout', inputs: ['a'], outputs: ['unused_out', 'unused_mask'], name: 'dead_dropout' },
      ],
      outputs: ['y'],
    });
    const original = clone(ModelProtoSchema, model);
    const report = removeDeadNodes(model);
    expect(report.removedNodes.sort()).toEqual(['dead_add', 'dead_dropout', 'dead_mul', 'dead_relu']);
    expect(report.removedInitializers.sort()).toEqual(['dead_bias', 'unused']);
    expect(model.graph?.node.map((n) => n.name)).toEqual(['live_add', 'live_mul']);
    expect(model.graph?.initializer.map((t) => t.name)).toEqual(['live_bias', 'shared']);
    const feeds = { x: new ort.Tensor('float32', randomArray(6), [2, 3]) };
    const [before, after] = [(await runModel(original, feeds))['y'], (await runModel(model, feeds))['y']];
    expect(Array.from(after?.data as Float32Array)).toEqual(Array.from(before?.data as Float32Array));
  });

  it('should keep initializers that are also graph inputs, the model signature', () => {
    const model = buildModel({
      inputs: [
        { name: 'x', dataType: DataType.FLOAT, dims: [3] },
        { name: 'overridable', dataType: DataType.FLOAT, dims: [3] },
      ],
      initializers: [f32('overridable', [1, 2, 3])],
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
      outputs: ['y'],
    });
    expect(removeDeadNodes(model)).toEqual({ removedNodes: [], removedInitializers: [] });
    expect(model.graph?.input.length).toBe(2);
  });

  for (const name of FIXTURE_MODELS) {
    it(`should find nothing dead in ${name} and leave its outputs unchanged`, async () => {
      const model = loadFixture(name);
      const pruned = clone(ModelProtoSchema, model);
      expect(removeDeadNodes(pruned)).toEqual({ removedNodes: [], removedInitializers: [] });
      const feeds = fixtureInputs(name, 8);
      const [before, after] = [(await runModel(model, feeds))['logits'], (await runModel(pruned, feeds))['logits']];
      if (before === undefined || after === undefined) throw new Error('no logits');
      expect(relativeDifference(before, after)).toBe(0);
    });
  }
});

describe('removeUnusedConstants', () => {
  it('should remove unread initializers and Identity chains back to their source', () => {
    const model = loadFixture('resnet8-fmnist');
    const graph = new OnnxGraph(model.graph as never);
    // Make the shortcut BatchNorm read its own copy, so the Identity alias is no longer read.
    const bn = graph.nodes.find((n) => n.name === '/layer2/shortcut/shortcut.1/BatchNormalization');
    if (bn === undefined) throw new Error('fixture changed');
    graph.setInitializer(f32('copy', Array.from({ length: 32 }, () => 0)));
    graph.setNodeInput(bn, 2, 'copy');
    const removed = removeUnusedConstants(graph, ['layer2.shortcut.1.bias']);
    // The alias and its Identity go; layer2.bn2.bias stays, its own BatchNorm still reads it.
    expect(removed).toEqual(['layer2.shortcut.1.bias']);
    expect(graph.nodes.filter((n) => n.opType === 'Identity').length).toBe(1);
    expect(graph.getInitializer('layer2.bn2.bias')).toBeDefined();
  });
});
