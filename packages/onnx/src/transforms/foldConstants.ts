import { clone } from '@bufbuild/protobuf';
import { ModelFormatError } from '@open-autoglm/core';
import { isDefaultDomain, makeTensorValueInfo, namesUsedBy, OnnxGraph } from '../OnnxGraph.js';
import { type ModelProto, type NodeProto, type TensorProto, TensorProtoSchema } from '../proto.js';
import { inferShapes } from '../inferShapes.js';
import { arrayToTensor, tensorDims, tensorToArray } from '../tensor.js';
import {
  CONSTANT_FOLDABLE_OPS,
  type ConstantTensor,
  evaluateConstantNode,
  isEvaluableType,
  shapeOf,
} from './evaluateConstantNode.js';
import { nodeLabel } from './removeDeadNodes.js';

export interface ConstantFoldOptions {
  /**
   * A folded tensor larger than this (in elements) and larger than every input of its node is
   * left to be computed at run time, so folding never bloats the file (ConstantOfShape, Expand
   * -like growth). Default 65536.
   */
  maxOutputElements?: number;
}

export interface ConstantFoldReport {
  /** Nodes evaluated here and removed (Constant nodes included). */
  foldedNodes: string[];
  /** Initializers added for folded tensors that other nodes still read. */
  addedInitializers: string[];
  /** Initializers removed because only folded nodes read them. */
  removedInitializers: string[];
  /** Nodes that could be folded but whose output exceeds `maxOutputElements`. */
  leftTooLarge: string[];
}

/**
 * Evaluates, in JavaScript, the nodes whose inputs are all constant (initializers that are not
 * graph inputs, Constant outputs, earlier folded results) and whose op is a small shape or
 * integer op (`CONSTANT_FOLDABLE_OPS`: Shape, Gather, Unsqueeze, Concat, Reshape, Cast, Slice,
 * Squeeze, Add/Sub/Mul/Div, ConstantOfShape, Range, Identity), plus every Constant node, and
 * replaces what other nodes still read with initializers. Shape also folds when its input is not
 * constant but has static dims (symbolic dims such as `batch` keep it in the graph). Nodes that
 * produce a graph output are kept, so the signature does not change. Edits the model in place.
 */
export function foldConstants(model: ModelProto, options: ConstantFoldOptions = {}): ConstantFoldReport {
  const graph = model.graph;
  if (graph === undefined) {
    throw new ModelFormatError('The model has no graph, so there is nothing to fold. Re-export the model.');
  }
  const limit = options.maxOutputElements ?? 65536;
  const view = new OnnxGraph(graph);
  const shapes = inferShapes(model).shapes;
  const known = new Map<string, ConstantTensor>();
  const valueOf = (name: string): ConstantTensor | undefined => {
    const cached = known.get(name);
    if (cached !== undefined) return cached;
    const tensor = view.getInitializer(name);
    if (tensor === undefined || view.isGraphInput(name) || !isEvaluableType(tensor.dataType)) return undefined;
    const value = { dataType: tensor.dataType, dims: tensorDims(tensor), data: tensorToArray(tensor) };
    known.set(name, value);
    return value;
  };

  const folded: NodeProto[] = [];
  // Constant values are kept as given (any type, e.g. float16) when they become initializers.
  const constantNodeValues = new Map<string, TensorProto>();
  const leftTooLarge: string[] = [];
  for (const node of view.topologicalOrder()) {
    if (!isDefaultDomain(node.domain) || node.output.some((o) => view.isGraphOutput(o))) continue;
    if (node.attribute.some((a) => a.g !== undefined || a.graphs.length > 0)) continue;
    let outputs: ConstantTensor[] | undefined;
    if (node.opType === 'Constant') {
      const tensor = view.constantValue(node.output[0] ?? '');
      if (tensor === undefined) continue;
      constantNodeValues.set(node.output[0] ?? '', tensor);
      if (isEvaluableType(tensor.dataType)) {
        outputs = [{ dataType: tensor.dataType, dims: tensorDims(tensor), data: tensorToArray(tensor) }];
      } else {
        folded.push(node);
        continue;
      }
    } else if (node.opType === 'Shape') {
      const dims = shapes.get(node.input[0] ?? '')?.dims;
      if (dims !== undefined && dims.every((d) => typeof d === 'number')) outputs = [shapeOf(node, dims as number[])];
    } else if (CONSTANT_FOLDABLE_OPS.has(node.opType)) {
      const inputs = node.input.map((name) => (name === '' ? undefined : valueOf(name)));
      const missing = node.input.some((name, i) => name !== '' && inputs[i] === undefined);
      if (!missing) outputs = evaluateConstantNode(node, inputs);
      if (outputs !== undefined) {
        const largestInput = Math.max(0, ...inputs.map((t) => t?.data.length ?? 0));
        if (outputs.some((o) => o.data.length > limit && o.data.length > largestInput)) {
          leftTooLarge.push(nodeLabel(view, node));
          outputs = undefined;
        }
      }
    }
    if (outputs === undefined || outputs.length < node.output.filter((o) => o !== '').length) continue;
    node.output.forEach((name, i) => {
      const value = outputs?.[i];
      if (name !== '' && value !== undefined) known.set(name, value);
    });
    folded.push(node);
  }

  const foldedNodes = folded.map((node) => nodeLabel(view, node));
  const foldedSet = new Set(folded);
  // What the remaining nodes (and their subgraphs) still read decides which results are kept.
  const stillRead = new Set<string>();
  for (const node of graph.node) if (!foldedSet.has(node)) for (const name of namesUsedBy(node)) stillRead.add(name);
  const readByFolded = new Set(folded.flatMap((node) => node.input));
  view.removeNodes(folded);

  const addedInitializers: string[] = [];
  for (const node of folded) {
    for (const name of node.output) {
      if (name === '') continue;
      graph.valueInfo = graph.valueInfo.filter((v) => v.name !== name);
      if (!stillRead.has(name)) continue;
      const constant = constantNodeValues.get(name);
      const value = known.get(name);
      let tensor: TensorProto;
      if (constant !== undefined) tensor = clone(TensorProtoSchema, constant);
      else if (value !== undefined) tensor = arrayToTensor(name, value.data, value.dims, value.dataType);
      else continue;
      tensor.name = name;
      view.setInitializer(tensor);
      // Before IR 4 every initializer must also be a graph input.
      if (model.irVersion < 4n) view.addInput(makeTensorValueInfo(name, tensor.dataType, tensorDims(tensor)));
      addedInitializers.push(name);
    }
  }
  const removedInitializers: string[] = [];
  for (const name of readByFolded) {
    if (name === '' || stillRead.has(name) || view.isGraphOutput(name) || view.isGraphInput(name)) continue;
    if (view.removeInitializer(name) !== undefined) removedInitializers.push(name);
  }
  return { foldedNodes, addedInitializers, removedInitializers, leftTooLarge };
}
