import {
  arrayToTensor,
  DataType,
  isDefaultDomain,
  makeAttribute,
  type ModelProto,
  OnnxGraph,
  type TensorArray,
  type TensorProto,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import type { DependencyAnalysis, DependencyGroup } from './analyzeDependencies.js';
import type { PruningPlan } from './planPruning.js';

/** Keeps `kept` indices (sorted) along `axis` of a row-major array with `dims`. */
function sliceAxis(data: TensorArray, dims: readonly number[], axis: number, kept: readonly number[]): TensorArray {
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= dims[d] as number;
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d] as number;
  const axisSize = dims[axis] as number;
  const Constructor = data.constructor as new (length: number) => TensorArray;
  const out = new Constructor(outer * kept.length * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of kept) {
      const start = (o * axisSize + k) * inner;
      (out as Float32Array).set((data as Float32Array).subarray(start, start + inner), at);
      at += inner;
    }
  }
  return out;
}

/** The indices along a member's axis that the kept units cover. */
function keptIndices(keptUnits: readonly number[], perUnit: number): number[] {
  const indices: number[] = [];
  for (const unit of keptUnits) for (let j = 0; j < perUnit; j++) indices.push(unit * perUnit + j);
  return indices;
}

/**
 * Rewrites `model` in place so that every group keeps only its planned units: weights, biases,
 * BatchNorm parameters and per-channel constants are sliced, Reshape targets and depthwise
 * `group` attributes shrink. `model` must be (a copy of) the model `analysis` was made from.
 * Stale shape annotations (value_info) of standard ops are dropped; onnxruntime re-infers them.
 */
export function applyPruningPlan(model: ModelProto, analysis: DependencyAnalysis, plan: PruningPlan): void {
  const graph = new OnnxGraph(model.graph as NonNullable<ModelProto['graph']>);
  const groupsByName = new Map(analysis.groups.map((g) => [g.name, g]));
  // Slices per tensor, applied one axis after another (a conv weight loses outputs and inputs).
  const slices = new Map<string, Array<{ axis: number; kept: number[] }>>();
  const nodes = graph.proto.node;
  // Concatenated channels keep what their input groups keep, at their offsets.
  const work: Array<{ members: DependencyGroup['members']; unitSize: number; keptUnits: readonly number[] }> = [];
  for (const [name, keptUnits] of plan) {
    const group = groupsByName.get(name) as DependencyGroup;
    work.push({ members: group.members, unitSize: group.unitSize, keptUnits });
  }
  for (const concatenation of analysis.concatenations) {
    const kept: number[] = [];
    for (const segment of concatenation.segments) {
      const keptOfGroup = segment.group === undefined ? undefined : plan.get(segment.group);
      const channels = keptOfGroup ?? Array.from({ length: segment.channels }, (_, i) => i);
      for (const channel of channels) kept.push(segment.offset + channel);
    }
    if (kept.length < concatenation.channels) work.push({ members: concatenation.members, unitSize: 1, keptUnits: kept });
  }
  for (const { members, unitSize, keptUnits } of work) {
    for (const member of members) {
      const perUnit = Math.round(member.perBase * unitSize);
      if (member.kind === 'tensor') {
        const list = slices.get(member.tensor) ?? [];
        list.push({ axis: member.axis, kept: keptIndices(keptUnits, perUnit) });
        slices.set(member.tensor, list);
      } else if (member.kind === 'reshape') {
        const node = nodes[member.nodeIndex];
        const shapeName = node?.input[1];
        const shape = shapeName === undefined ? undefined : graph.constantValue(shapeName);
        if (node === undefined || shape === undefined) continue;
        const values = BigInt64Array.from(Array.from(tensorToArray(shape) as ArrayLike<number | bigint>, (v) => BigInt(v)));
        values[member.position] = BigInt(keptUnits.length * perUnit);
        const renamed = graph.uniqueName(`${shapeName ?? 'shape'}_pruned`);
        graph.setInitializer(arrayToTensor(renamed, values, tensorDims(shape), DataType.INT64));
        graph.setNodeInput(node, 1, renamed);
      } else {
        const node = nodes[member.nodeIndex];
        if (node === undefined) continue;
        const index = node.attribute.findIndex((a) => a.name === 'group');
        const attribute = makeAttribute('group', keptUnits.length * perUnit);
        if (index >= 0) node.attribute[index] = attribute;
        else node.attribute.push(attribute);
      }
    }
  }
  for (const [name, list] of slices) {
    const tensor = graph.constantValue(name);
    if (tensor === undefined) continue;
    let data = tensorToArray(tensor);
    let dims = tensorDims(tensor);
    for (const { axis, kept } of list) {
      data = sliceAxis(data, dims, axis, kept);
      dims = dims.map((d, i) => (i === axis ? kept.length : d));
    }
    writeConstant(graph, name, arrayToTensor(name, data, dims, tensor.dataType));
  }
  // Shapes of standard ops are re-inferred; those of custom-domain ops cannot be and never change
  // (a group reaching a custom op is frozen), so their declarations stay.
  const customOutputs = new Set(graph.nodes.filter((n) => !isDefaultDomain(n.domain)).flatMap((n) => n.output));
  const kept = graph.proto.valueInfo.filter((info) => customOutputs.has(info.name));
  graph.proto.valueInfo.splice(0, graph.proto.valueInfo.length, ...kept);
  graph.invalidate();
}

/** Replaces an initializer, or the `value` of the Constant node producing `name`. */
function writeConstant(graph: OnnxGraph, name: string, tensor: TensorProto): void {
  if (graph.getInitializer(name) !== undefined) {
    graph.setInitializer(tensor);
    return;
  }
  const producer = graph.producerOf(name);
  if (producer === undefined) return;
  producer.attribute = producer.attribute.filter((a) => !a.name.startsWith('value'));
  producer.attribute.push(makeAttribute('value', tensor));
}
