import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { makeGraphAttribute, makeNode, makeTensorValueInfo } from './OnnxGraph.js';
import { findModelProblems } from './findModelProblems.js';
import { makeModel } from './makeModel.js';
import { DataType, FunctionProtoSchema, type GraphProto, GraphProtoSchema, type ModelProto } from './proto.js';
import { arrayToTensor } from './tensor.js';

/** A model around `graph` importing the default domain at opset 17. */
function modelOf(graph: GraphProto, extra: Partial<Pick<ModelProto, 'functions'>> = {}): ModelProto {
  return Object.assign(makeModel(graph), extra);
}

/** X -> If(cond) with branches reading `thenReads` / the outer "a"; Y = If output. */
function ifModel(thenReads: string): ModelProto {
  const branch = (name: string, reads: string): GraphProto =>
    create(GraphProtoSchema, {
      name,
      node: [makeNode('Identity', [reads], [`${name}_out`])],
      output: [makeTensorValueInfo(`${name}_out`, DataType.FLOAT)],
    });
  const ifNode = makeNode(
    'If',
    ['cond'],
    ['Y'],
    {
      then_branch: makeGraphAttribute('then_branch', branch('then', thenReads)),
      else_branch: makeGraphAttribute('else_branch', branch('else', 'a')),
    },
    'choose',
  );
  return modelOf(
    create(GraphProtoSchema, {
      name: 'main',
      node: [makeNode('Relu', ['X'], ['a']), makeNode('Cast', ['X'], ['cond'], { to: DataType.BOOL }), ifNode],
      input: [makeTensorValueInfo('X', DataType.FLOAT, [1])],
      output: [makeTensorValueInfo('Y', DataType.FLOAT)],
    }),
  );
}

describe('findModelProblems', () => {
  it('should accept subgraphs reading names of the enclosing graph', () => {
    expect(findModelProblems(ifModel('a'))).toEqual([]);
  });

  it('should report a subgraph reading a name defined nowhere, naming the subgraph and its node', () => {
    expect(findModelProblems(ifModel('ghost'))).toEqual([
      'node #0 (Identity) of the subgraph "then" of node "choose" (If) reads "ghost", which no input, initializer or node defines',
    ]);
  });

  it('should accept a node calling a local function, and check the function body', () => {
    const fn = create(FunctionProtoSchema, {
      name: 'Double',
      domain: 'local',
      input: ['a'],
      output: ['c'],
      node: [makeNode('Add', ['a', 'a'], ['c'])],
      opsetImport: [{ domain: '', version: 17n }],
    });
    const graph = create(GraphProtoSchema, {
      name: 'main',
      node: [makeNode('Double', ['X'], ['Y'], {}, 'call', 'local')],
      input: [makeTensorValueInfo('X', DataType.FLOAT, [1])],
      output: [makeTensorValueInfo('Y', DataType.FLOAT)],
    });
    expect(findModelProblems(modelOf(graph, { functions: [fn] }))).toEqual([]);
    fn.node.push(makeNode('Mul', ['c', 'missing'], ['d']));
    fn.output.push('e');
    expect(findModelProblems(modelOf(graph, { functions: [fn] }))).toEqual([
      'node #1 (Mul) of function "local.Double" reads "missing", which the function does not define',
      'output "e" of function "local.Double" is never produced',
    ]);
  });

  it('should report a node output that redefines a graph input or initializer, and nameless entries', () => {
    const graph = create(GraphProtoSchema, {
      name: 'main',
      node: [makeNode('Relu', ['X'], ['W']), makeNode('Neg', ['X'], ['X'])],
      input: [makeTensorValueInfo('X', DataType.FLOAT, [1]), makeTensorValueInfo('', DataType.FLOAT)],
      initializer: [arrayToTensor('W', Float32Array.from([1]), [1])],
      output: [makeTensorValueInfo('W', DataType.FLOAT)],
    });
    expect(findModelProblems(modelOf(graph))).toEqual([
      'an input of the main graph has no name',
      'tensor "W" of the main graph is defined twice (node #0 (Relu) redefines it)',
      'tensor "X" of the main graph is defined twice (node #1 (Neg) redefines it)',
    ]);
  });

  it('should stop after twenty problems', () => {
    const graph = create(GraphProtoSchema, {
      name: 'main',
      node: Array.from({ length: 50 }, (_, i) => makeNode('Relu', [`missing${i}`], [`y${i}`])),
    });
    expect(findModelProblems(modelOf(graph))).toHaveLength(20);
  });
});
