import { create } from '@bufbuild/protobuf';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, UnsupportedOperationError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { getFloatAttribute, getIntAttribute, getIntsAttribute, getStringAttribute, makeAttribute } from './attributes.js';
import { makeGraphAttribute, makeNode, makeTensorValueInfo, namesUsedBy, OnnxGraph, outerScopeNamesOf } from './OnnxGraph.js';
import { OnnxModel } from './OnnxModel.js';
import {
  AttributeType,
  DataType,
  type GraphProto,
  GraphProtoSchema,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';
import { arrayToTensor, tensorToArray } from './tensor.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../../fixtures/${name}.onnx`, import.meta.url));
const FIXTURE_MODELS = ['lenet5-fmnist', 'resnet8-fmnist', 'vgg11bn-mnist', 'tinybert-spam'] as const;

/** A graph from nodes; X is the only input, `outputs` the outputs. */
function graphOf(
  nodes: NodeProto[],
  outputs: string[] = [],
  extra: { initializer?: TensorProto[]; input?: ValueInfoProto[] } = {},
): OnnxGraph {
  return new OnnxGraph(
    create(GraphProtoSchema, {
      name: 'g',
      node: nodes,
      input: [makeTensorValueInfo('X', DataType.FLOAT, [2])],
      output: outputs.map((name) => makeTensorValueInfo(name, DataType.FLOAT)),
      ...extra,
    }),
  );
}

function namesOf(nodes: readonly NodeProto[]): string[] {
  return nodes.map((node) => node.name);
}

/** True when every node comes after the producers of all it reads. */
function isTopological(nodes: readonly NodeProto[]): boolean {
  const produced = new Map<string, number>();
  nodes.forEach((node, i) => node.output.forEach((o) => produced.set(o, i)));
  return nodes.every((node, i) => [...namesUsedBy(node)].every((name) => (produced.get(name) ?? -1) < i));
}

/** A seeded Fisher-Yates shuffle. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

async function runLogits(model: OnnxModel, feeds: Record<string, ort.Tensor>): Promise<Buffer> {
  const session = await ort.InferenceSession.create(model.toBytes(), { intraOpNumThreads: 1 });
  try {
    const data = (await session.run(feeds)).logits?.data as Float32Array;
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  } finally {
    await session.release();
  }
}

const IMAGE = new ort.Tensor('float32', Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 104729) % 1000) / 1000), [2, 1, 28, 28]);
/** Two token sequences: [CLS], ids spread over the vocabulary, then [PAD] (0) from position 40 on. */
const TOKENS = new ort.Tensor(
  'int64',
  BigInt64Array.from({ length: 2 * 128 }, (_, i) => (i % 128 === 0 ? 2n : i % 128 < 40 ? BigInt((i * 7919) % 8003) : 0n)),
  [2, 128],
);
const feedsFor = (name: string): Record<string, ort.Tensor> => (name === 'tinybert-spam' ? { input_ids: TOKENS } : { input: IMAGE });

describe('makeNode', () => {
  it('should build a node with typed attributes, a name and a domain', () => {
    const node = makeNode(
      'Conv',
      ['x', 'w'],
      ['y'],
      { group: 2, pads: [1, 1, 1, 1], auto_pad: 'NOTSET', alpha: makeAttribute('alpha', 1, true) },
      'conv1',
      'ai.onnx',
    );
    expect([node.opType, node.name, node.domain, node.input, node.output]).toEqual(['Conv', 'conv1', 'ai.onnx', ['x', 'w'], ['y']]);
    expect(getIntAttribute(node, 'group')).toBe(2);
    expect(getIntsAttribute(node, 'pads')).toEqual([1, 1, 1, 1]);
    expect(getStringAttribute(node, 'auto_pad')).toBe('NOTSET');
    expect(node.attribute.find((a) => a.name === 'alpha')?.type).toBe(AttributeType.FLOAT);
    expect(getFloatAttribute(node, 'alpha')).toBe(1);
  });
});

describe('OnnxGraph', () => {
  describe('topologicalOrder', () => {
    // X -> A -> a; a -> B -> b; a -> C -> c; (b, c) -> D -> Y
    const diamond = (): NodeProto[] => [
      makeNode('Relu', ['X'], ['a'], {}, 'A'),
      makeNode('Neg', ['a'], ['b'], {}, 'B'),
      makeNode('Abs', ['a'], ['c'], {}, 'C'),
      makeNode('Add', ['b', 'c'], ['Y'], {}, 'D'),
    ];

    it('should return a sorted graph in its own order', () => {
      const graph = graphOf(diamond(), ['Y']);
      expect(namesOf(graph.topologicalOrder())).toEqual(['A', 'B', 'C', 'D']);
    });

    it('should sort a shuffled graph, keeping file order among ready nodes', () => {
      const [a, b, c, d] = diamond() as [NodeProto, NodeProto, NodeProto, NodeProto];
      const graph = graphOf([d, c, a, b], ['Y']);
      // Ready after A: C (position 1) before B (position 3).
      expect(namesOf(graph.topologicalOrder())).toEqual(['A', 'C', 'B', 'D']);
      graph.sortTopologically();
      expect(namesOf(graph.nodes)).toEqual(['A', 'C', 'B', 'D']);
      expect(graph.producerOf('a')?.name).toBe('A');
    });

    it('should count a node reading the same name twice as one dependency', () => {
      const graph = graphOf([makeNode('Mul', ['a', 'a'], ['Y'], {}, 'M'), makeNode('Relu', ['X'], ['a'], {}, 'R')], ['Y']);
      expect(namesOf(graph.topologicalOrder())).toEqual(['R', 'M']);
    });

    it('should name the nodes of a cycle', () => {
      const graph = graphOf(
        [
          makeNode('Add', ['X', 'd'], ['a'], {}, 'first'),
          makeNode('Relu', ['a'], ['b'], {}, 'second'),
          makeNode('Neg', ['b'], ['d'], {}),
          makeNode('Relu', ['X'], ['free'], {}, 'free'),
        ],
        ['b'],
      );
      const error = (() => {
        try {
          graph.topologicalOrder();
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as Error).message).toMatch(/Graph "g" has a cycle: .*"first" \(Add\)/);
      expect((error as Error).message).toContain('"second" (Relu)');
      expect((error as Error).message).toContain('#2 (Neg)');
      expect((error as Error).message).not.toContain('free');
      const selfLoop = graphOf([makeNode('Add', ['X', 'y'], ['y'], {}, 'loop')], ['y']);
      expect(() => selfLoop.topologicalOrder()).toThrow(/cycle: "loop" \(Add\) -> "loop" \(Add\)/);
    });

    it.each(FIXTURE_MODELS)('should keep %s in file order and sort a shuffled copy that runs identically', async (name) => {
      const model = await OnnxModel.load(fixture(name));
      expect(model.graph.topologicalOrder()).toEqual([...model.graph.nodes]);
      const copy = model.clone();
      const mixed = shuffled(copy.graph.nodes, 42);
      copy.graph.proto.node.splice(0, copy.graph.proto.node.length, ...mixed);
      expect(isTopological(copy.graph.nodes)).toBe(false);
      copy.graph.sortTopologically();
      expect(isTopological(copy.graph.nodes)).toBe(true);
      expect(copy.graph.nodes).toHaveLength(model.graph.nodes.length);
      expect(Buffer.compare(await runLogits(copy, feedsFor(name)), await runLogits(model, feedsFor(name)))).toBe(0);
    });
  });

  describe('producers and consumers', () => {
    it.each(FIXTURE_MODELS)('should match a brute-force scan of %s', async (name) => {
      const graph = (await OnnxModel.load(fixture(name))).graph;
      const names = new Set(graph.nodes.flatMap((node) => [...node.input, ...node.output]).filter((n) => n !== ''));
      for (const tensor of names) {
        expect(graph.producerOf(tensor)).toBe(graph.nodes.find((node) => node.output.includes(tensor)));
        expect(graph.consumersOf(tensor)).toEqual(graph.nodes.filter((node) => node.input.includes(tensor)));
      }
      expect(graph.producerOf('no such tensor')).toBeUndefined();
      expect(graph.consumersOf('no such tensor')).toEqual([]);
    });

    it('should see the residual forks of resnet8', async () => {
      const graph = (await OnnxModel.load(fixture('resnet8-fmnist'))).graph;
      const adds = graph.nodes.filter((node) => node.opType === 'Add');
      expect(adds).toHaveLength(3);
      // Each residual Add reads a tensor that also feeds the block's first conv: a fork with two consumers.
      const forks = adds.filter((add) => add.input.some((name) => graph.consumersOf(name).length === 2));
      expect(forks.length).toBeGreaterThanOrEqual(1);
      expect(graph.consumersOf('input').map((node) => node.opType)).toEqual(['Conv']);
    });

    it('should follow edits made through the graph, and direct edits after invalidate()', () => {
      const graph = graphOf([makeNode('Relu', ['X'], ['a'], {}, 'A')], ['a']);
      expect(graph.consumersOf('a')).toEqual([]);
      const neg = graph.addNode(makeNode('Neg', ['a'], ['b'], {}, 'B'));
      expect(graph.consumersOf('a')).toEqual([neg]);
      expect(graph.producerOf('b')).toBe(neg);
      // A node pushed straight onto the proto changes the list length, which the index notices.
      const abs = makeNode('Abs', ['b'], ['c'], {}, 'C');
      graph.proto.node.push(abs);
      expect(graph.producerOf('c')).toBe(abs);
      // An in-place input edit needs invalidate() (or setNodeInput).
      abs.input[0] = 'a';
      graph.invalidate();
      expect(graph.consumersOf('a')).toEqual([neg, abs]);
      graph.setNodeInput(abs, 0, 'X');
      expect(graph.consumersOf('X').map((n) => n.name)).toEqual(['A', 'C']);
      expect(graph.indexOfNode(abs)).toBe(2);
    });
  });

  describe('node edits', () => {
    it('should insert before and after a node and remove nodes', () => {
      const a = makeNode('Relu', ['X'], ['a'], {}, 'A');
      const c = makeNode('Abs', ['b'], ['Y'], {}, 'C');
      const graph = graphOf([a, c], ['Y']);
      const b = graph.insertNodeAfter(a, makeNode('Neg', ['a'], ['b'], {}, 'B'));
      graph.insertNodeBefore(a, makeNode('Identity', ['X'], ['x0'], {}, 'first'));
      expect(namesOf(graph.nodes)).toEqual(['first', 'A', 'B', 'C']);
      graph.removeNode(b);
      expect(namesOf(graph.nodes)).toEqual(['first', 'A', 'C']);
      expect(graph.producerOf('b')).toBeUndefined();
      graph.removeNodes(graph.nodes.filter((node) => node.name !== 'C'));
      expect(namesOf(graph.nodes)).toEqual(['C']);
      expect(() => graph.removeNode(a)).toThrow(UnsupportedOperationError);
      expect(() => graph.insertNodeAfter(a, makeNode('Relu', ['X'], ['z']))).toThrow(/Node "A" \(Relu\) is not in graph "g"/);
    });

    it('should bypass the Identity nodes of resnet8 without changing its outputs', async () => {
      const model = await OnnxModel.load(fixture('resnet8-fmnist'));
      const copy = model.clone();
      const identities = copy.graph.nodes.filter((node) => node.opType === 'Identity');
      expect(identities).toHaveLength(2);
      for (const identity of identities) {
        const [input, output] = [identity.input[0] ?? '', identity.output[0] ?? ''];
        copy.graph.replaceUses(output, input);
        expect(copy.graph.consumersOf(output)).toEqual([]);
        copy.graph.removeNode(identity);
      }
      expect(copy.problems()).toEqual([]);
      expect(copy.graph.nodes).toHaveLength(31);
      expect(Buffer.compare(await runLogits(copy, { input: IMAGE }), await runLogits(model, { input: IMAGE }))).toBe(0);
    });
  });

  describe('renameTensor and replaceUses', () => {
    it('should rename a graph input, an initializer and an intermediate tensor everywhere', async () => {
      const model = await OnnxModel.load(fixture('lenet5-fmnist'));
      const copy = model.clone();
      const graph = copy.graph;
      const conv = graph.consumersOf('input')[0];
      const weight = conv?.input[1] ?? '';
      const hidden = conv?.output[0] ?? '';
      graph.renameTensor('input', 'pixels');
      graph.renameTensor(weight, 'conv1_weight');
      graph.renameTensor(hidden, 'conv1_out');
      graph.renameTensor('logits', 'scores');
      expect(graph.inputs.map((i) => i.name)).toEqual(['pixels']);
      expect(graph.outputs.map((o) => o.name)).toEqual(['scores']);
      expect(conv?.input.slice(0, 2)).toEqual(['pixels', 'conv1_weight']);
      expect(graph.getInitializer('conv1_weight')).toBeDefined();
      expect(graph.getInitializer(weight)).toBeUndefined();
      expect(graph.consumersOf('conv1_out')).toHaveLength(1);
      expect(copy.problems()).toEqual([]);
      const session = await ort.InferenceSession.create(copy.toBytes(), { intraOpNumThreads: 1 });
      const renamed = (await session.run({ pixels: IMAGE })).scores?.data as Float32Array;
      await session.release();
      const renamedBytes = Buffer.from(renamed.buffer, renamed.byteOffset, renamed.byteLength);
      expect(Buffer.compare(renamedBytes, await runLogits(model, { input: IMAGE }))).toBe(0);
    });

    it('should refuse a name already in use', () => {
      const graph = graphOf([makeNode('Relu', ['X'], ['a']), makeNode('Neg', ['a'], ['b'])], ['b']);
      expect(() => graph.renameTensor('a', 'b')).toThrow(/Cannot rename tensor "a" to "b" in graph "g": "b" is already used/);
      graph.renameTensor('a', 'a');
      expect(graph.producerOf('a')).toBeDefined();
    });

    it('should leave graph outputs alone in replaceUses', () => {
      const graph = graphOf([makeNode('Relu', ['X'], ['a']), makeNode('Neg', ['a'], ['b']), makeNode('Abs', ['X'], ['c'])], ['a', 'b']);
      graph.replaceUses('a', 'c');
      expect(graph.nodes[1]?.input).toEqual(['c']);
      expect(graph.outputs.map((o) => o.name)).toEqual(['a', 'b']);
      expect(graph.consumersOf('a')).toEqual([]);
    });
  });

  describe('subgraphs', () => {
    /** A one-node branch graph reading `inputs` from the enclosing graph. */
    const branch = (opType: string, inputs: string[], name: string): GraphProto =>
      create(GraphProtoSchema, {
        name,
        node: [makeNode(opType, inputs, [`${name}_out`])],
        output: [makeTensorValueInfo(`${name}_out`, DataType.FLOAT)],
      });

    it('should treat names read inside a branch as inputs of the If node', () => {
      const ifNode = makeNode('If', ['cond'], ['Y'], {}, 'choose');
      ifNode.attribute.push(makeGraphAttribute('then_branch', branch('Add', ['a', 'a'], 'then')));
      ifNode.attribute.push(makeGraphAttribute('else_branch', branch('Neg', ['b'], 'else')));
      const graph = graphOf(
        [
          ifNode,
          makeNode('Relu', ['X'], ['a'], {}, 'A'),
          makeNode('Neg', ['X'], ['b'], {}, 'B'),
          makeNode('Cast', ['X'], ['cond'], { to: DataType.BOOL }, 'C'),
        ],
        ['Y'],
      );
      expect([...outerScopeNamesOf(ifNode.attribute[0]?.g as GraphProto)]).toEqual(['a']);
      expect(graph.consumersOf('a')).toEqual([ifNode]);
      expect(graph.consumersOf('b')).toEqual([ifNode]);
      expect(namesOf(graph.topologicalOrder())).toEqual(['A', 'B', 'C', 'choose']);
      graph.renameTensor('a', 'renamed');
      expect(ifNode.attribute[0]?.g?.node[0]?.input).toEqual(['renamed', 'renamed']);
      expect(graph.uniqueName('then_out')).toBe('then_out_1');
    });

    it('should not rename a shadowing name defined inside a subgraph', () => {
      const body = create(GraphProtoSchema, {
        name: 'body',
        input: [makeTensorValueInfo('a', DataType.FLOAT)],
        node: [makeNode('Neg', ['a'], ['body_out'])],
        output: [makeTensorValueInfo('body_out', DataType.FLOAT)],
      });
      const loop = makeNode('Scan', ['a'], ['Y'], { num_scan_inputs: 1, body: makeGraphAttribute('body', body) }, 'scan');
      const graph = graphOf([makeNode('Relu', ['X'], ['a']), loop], ['Y']);
      graph.renameTensor('a', 'z');
      expect(loop.input).toEqual(['z']);
      expect(body.node[0]?.input).toEqual(['a']);
      expect(body.input[0]?.name).toBe('a');
    });
  });

  describe('uniqueName', () => {
    it('should return the prefix when free, else numbered names never handed out twice', () => {
      const graph = graphOf([makeNode('Relu', ['X'], ['a'], {}, 'relu'), makeNode('Neg', ['a'], ['a_1'])], ['a_1']);
      expect(graph.uniqueName('fresh')).toBe('fresh');
      expect(graph.uniqueName('fresh')).toBe('fresh_1');
      expect(graph.uniqueName('a')).toBe('a_2');
      expect(graph.uniqueName('a')).toBe('a_3');
      expect(graph.uniqueName('relu')).toBe('relu_1'); // node names count too
      expect(graph.uniqueName('X')).toBe('X_1');
    });
  });

  describe('constants', () => {
    it('should report initializers and Constant outputs, but not overridable initializers', async () => {
      const graph = (await OnnxModel.load(fixture('tinybert-spam'))).graph;
      const constants = graph.nodes.filter((node) => node.opType === 'Constant');
      expect(constants).toHaveLength(21);
      for (const node of constants) {
        const value = graph.constantValue(node.output[0] ?? '');
        expect(value).toBeDefined();
        expect(graph.isConstant(node.output[0] ?? '')).toBe(true);
      }
      const weight = graph.initializers[0];
      expect(weight === undefined ? false : graph.isConstant(weight.name)).toBe(true);
      expect(graph.constantValue(weight?.name ?? '')).toBe(weight);
      expect(graph.isConstant('input_ids')).toBe(false);
      expect(graph.isConstant('logits')).toBe(false);

      const overridable = graphOf([makeNode('Add', ['X', 'W'], ['Y'])], ['Y'], {
        initializer: [arrayToTensor('W', Float32Array.from([1, 2]), [2])],
        input: [makeTensorValueInfo('X', DataType.FLOAT, [2]), makeTensorValueInfo('W', DataType.FLOAT, [2])],
      });
      expect(overridable.isConstant('W')).toBe(false);
      expect(overridable.inputs.map((i) => i.name)).toEqual(['X']);
      expect(overridable.isGraphInput('W')).toBe(true);
    });

    it('should turn the scalar and list forms of Constant into tensors', () => {
      const graph = graphOf(
        [
          makeNode('Constant', [], ['f'], { value_float: makeAttribute('value_float', 2.5, true) }),
          makeNode('Constant', [], ['fs'], { value_floats: makeAttribute('value_floats', [1, 2], true) }),
          makeNode('Constant', [], ['i'], { value_int: 7 }),
          makeNode('Constant', [], ['is'], { value_ints: [3, 4, 5] }),
          makeNode('Constant', [], ['t'], { value: arrayToTensor('', Int32Array.from([9]), [1]) }),
        ],
        [],
      );
      const read = (name: string): unknown[] => {
        const tensor = graph.constantValue(name);
        return tensor === undefined ? [] : [tensor.dims.map(Number), Array.from(tensorToArray(tensor) as ArrayLike<unknown>)];
      };
      expect(read('f')).toEqual([[], [2.5]]);
      expect(read('fs')).toEqual([[2], [1, 2]]);
      expect(read('i')).toEqual([[], [7n]]);
      expect(read('is')).toEqual([[3], [3n, 4n, 5n]]);
      expect(read('t')).toEqual([[1], [9]]);
      expect(graph.constantValue('i')?.name).toBe('i');
    });
  });

  describe('initializers, inputs, outputs and value_info', () => {
    it('should set, replace and remove initializers by name', () => {
      const graph = graphOf([makeNode('Add', ['X', 'W'], ['Y'])], ['Y'], {
        initializer: [arrayToTensor('W', Float32Array.from([1, 2]), [2]), arrayToTensor('V', Float32Array.from([3]), [1])],
        input: [makeTensorValueInfo('X', DataType.FLOAT, [2]), makeTensorValueInfo('W', DataType.FLOAT, [2])],
      });
      const replacement = arrayToTensor('W', Float32Array.from([5, 6]), [2]);
      graph.setInitializer(replacement);
      expect(graph.initializers.map((t) => t.name)).toEqual(['W', 'V']);
      expect(graph.getInitializer('W')).toBe(replacement);
      graph.setInitializer(arrayToTensor('U', Float32Array.from([0]), [1]));
      expect(graph.initializers.map((t) => t.name)).toEqual(['W', 'V', 'U']);
      const clash = arrayToTensor('Y', Float32Array.from([0]), [1]);
      expect(() => graph.setInitializer(clash)).toThrow(/node #0 \(Add\) already outputs that name/);
      expect(graph.removeInitializer('W')).toBe(replacement);
      expect(graph.isGraphInput('W')).toBe(false); // its IR<4 input entry went with it
      expect(graph.removeInitializer('W')).toBeUndefined();
      expect(graph.getInitializer('W')).toBeUndefined();
    });

    it('should keep value_info, inputs and outputs', () => {
      const graph = graphOf([makeNode('Relu', ['X'], ['a']), makeNode('Neg', ['a'], ['Y'])], ['Y']);
      graph.setValueInfo(makeTensorValueInfo('a', DataType.FLOAT, [2]));
      graph.setValueInfo(makeTensorValueInfo('a', DataType.FLOAT, ['n']));
      expect(graph.proto.valueInfo).toHaveLength(1);
      expect(graph.getValueInfo('a')?.type?.value.case).toBe('tensorType');
      graph.setValueInfo(makeTensorValueInfo('Y', DataType.FLOAT, [2]));
      expect(graph.proto.valueInfo).toHaveLength(1);
      expect(graph.getValueInfo('Y')).toBe(graph.outputs[0]);
      expect(graph.getValueInfo('X')).toBe(graph.proto.input[0]);
      expect(graph.removeValueInfo('a')).toBe(true);
      expect(graph.getValueInfo('a')).toBeUndefined();

      graph.addOutput(makeTensorValueInfo('a', DataType.FLOAT));
      graph.addOutput(makeTensorValueInfo('a', DataType.FLOAT));
      expect(graph.outputs.map((o) => o.name)).toEqual(['Y', 'a']);
      expect(graph.isGraphOutput('a')).toBe(true);
      expect(graph.removeOutput('a')).toBe(true);
      expect(graph.removeOutput('a')).toBe(false);
      graph.addInput(makeTensorValueInfo('extra', DataType.INT64, [1]));
      expect(graph.inputs.map((i) => i.name)).toEqual(['X', 'extra']);
      expect(graph.removeInput('extra')).toBe(true);
      expect(graph.isGraphInput('extra')).toBe(false);
    });
  });

  it('should expose the model graph view over the proto itself', async () => {
    const model = await OnnxModel.load(fixture('lenet5-fmnist'));
    expect(model.graph.proto).toBe(model.proto.graph);
    expect(model.graph).toBe(model.graph);
    model.proto.graph = create(GraphProtoSchema, { name: 'replaced' });
    expect(model.graph.name).toBe('replaced');
  });
});
