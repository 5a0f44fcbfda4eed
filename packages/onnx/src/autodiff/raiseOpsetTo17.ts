import { UnsupportedOperationError } from '@open-autoglm/core';
import { findAttribute, getFloatAttribute, getIntAttribute, getIntsAttribute } from '../attributes.js';
import { inferShapes } from '../inferShapes.js';
import { describeNode, isDefaultDomain, OnnxGraph } from '../OnnxGraph.js';
import type { OnnxModel } from '../OnnxModel.js';
import type { NodeProto } from '../proto.js';
import { arrayToTensor, type TensorArray } from '../tensor.js';

/** Ops whose axes moved from an attribute to an input in opset 13. */
const AXES_TO_INPUT = new Set(['Squeeze', 'Unsqueeze', 'ReduceSum']);
/** Ops whose `axis` meant "coerce to 2-D from here" before opset 13 and "this one axis" since. */
const COERCING_SOFTMAX = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

/**
 * Raises a model of opset 11 to 16 to opset 17 in place, rewriting the operators whose meaning
 * changed on the way: axes of Squeeze, Unsqueeze and ReduceSum and Split's `split` become inputs
 * (opset 13), Dropout's `ratio` attribute an input (opset 12), and Softmax, LogSoftmax and
 * Hardmax, which flattened everything from `axis` on before opset 13, are kept only where that
 * equals the new meaning (the axis is the last one). The other changes in between only added
 * types or optional attributes with compatible defaults. Throws UnsupportedOperationError for
 * older models and for softmaxes over several axes, naming the node.
 */
export function raiseOpsetTo17(model: OnnxModel): void {
  const opset = model.opsetVersion('') ?? 0;
  if (opset >= 17) return;
  if (opset < 11) {
    throw new UnsupportedOperationError(
      `The model imports opset ${opset}; training steps need opset 17, and this can raise models from opset 11 on. ` +
        'Convert the model first (onnx.version_converter.convert_version(model, 17)) or re-export it with a newer opset.',
    );
  }
  const graph = model.graph;
  const shapes = opset < 13 ? inferShapes(model.proto).shapes : undefined;
  for (const node of graph.topologicalOrder()) {
    if (!isDefaultDomain(node.domain)) continue;
    if (opset < 13 && AXES_TO_INPUT.has(node.opType)) moveIntsToInput(graph, node, 'axes', 1);
    if (opset < 13 && node.opType === 'Split') moveIntsToInput(graph, node, 'split', 1);
    if (opset < 12 && node.opType === 'Dropout' && findAttribute(node, 'ratio') !== undefined) {
      const ratio = getFloatAttribute(node, 'ratio', 0.5);
      node.attribute = node.attribute.filter((a) => a.name !== 'ratio');
      setInput(graph, node, 1, addConstant(graph, `${node.name || 'dropout'}_ratio`, Float32Array.of(ratio), []));
    }
    if (opset < 13 && COERCING_SOFTMAX.has(node.opType)) {
      const rank = shapes?.get(node.input[0] ?? '')?.dims?.length;
      const axis = getIntAttribute(node, 'axis', 1);
      if (rank === undefined || (axis < 0 ? axis + rank : axis) !== rank - 1) {
        throw new UnsupportedOperationError(
          `Cannot raise node ${describeNode(node)} from opset ${opset} to 17: before opset 13 it normalized over every axis from ${axis} on` +
            `${rank === undefined ? ' of an input of unknown rank' : ` of a rank-${rank} input`}, which opset 17 cannot say in one node. ` +
            'Re-export the model with opset 13 or newer.',
        );
      }
    }
  }
  model.setOpsetVersion(17);
  graph.invalidate();
}

function moveIntsToInput(graph: OnnxGraph, node: NodeProto, attribute: string, slot: number): void {
  const values = getIntsAttribute(node, attribute);
  if (values === undefined) return;
  node.attribute = node.attribute.filter((a) => a.name !== attribute);
  setInput(graph, node, slot, addConstant(graph, `${node.name || node.opType}_${attribute}`, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]));
}

function addConstant(graph: OnnxGraph, hint: string, data: TensorArray, dims: readonly number[]): string {
  const name = graph.uniqueName(hint);
  graph.setInitializer(arrayToTensor(name, data, dims));
  return name;
}

function setInput(graph: OnnxGraph, node: NodeProto, slot: number, name: string): void {
  while (node.input.length < slot) node.input.push('');
  if (node.input.length === slot) node.input.push(name);
  else node.input[slot] = name;
  graph.invalidate();
}
