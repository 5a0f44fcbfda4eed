import { UnsupportedOperationError } from '@open-autoglm/core';
import type { Dim, TensorTypeInfo } from '../inferShapes.js';
import { formatDims } from '../inferShapes.js';
import { describeNode, makeNode, type NodeAttributes, subgraphsOf } from '../OnnxGraph.js';
import { DataType, type GraphProto, type NodeProto } from '../proto.js';
import { arrayToTensor, type TensorArray } from '../tensor.js';

/**
 * Adds nodes, constants and fresh names to the graph of a training step. It keeps its own set
 * of taken names (one pass over the graph at construction) rather than going through
 * `OnnxGraph`, whose index would be rebuilt after every one of the thousands of added nodes.
 * Nodes are appended in creation order; `buildTrainingStep` sorts the graph at the end.
 */
export class StepGraphBuilder {
  private readonly taken = new Set<string>();
  private readonly sharedConstants = new Map<string, string>();
  private readonly sharedShapes = new Map<string, string>();
  /** Prefix of the names of the nodes added next (the forward node being differentiated). */
  scope = 'step';

  constructor(
    readonly graph: GraphProto,
    readonly opset: number,
    /** Types and shapes of the forward tensors (see `inferShapes`). */
    public shapes: ReadonlyMap<string, TensorTypeInfo>,
  ) {
    collectTakenNames(graph, this.taken);
  }

  /** A name not used anywhere in the graph yet, derived from `hint`; reserved from now on. */
  fresh(hint: string): string {
    const base = hint === '' ? 't' : hint;
    let name = base;
    for (let suffix = 1; this.taken.has(name); suffix++) name = `${base}_${suffix}`;
    this.taken.add(name);
    return name;
  }

  /** Reserves a name chosen by the caller; false when it is already taken. */
  reserve(name: string): boolean {
    if (this.taken.has(name)) return false;
    this.taken.add(name);
    return true;
  }

  /** Adds a default-domain node with fresh output names; returns them. */
  add(opType: string, inputs: readonly string[], attributes: NodeAttributes = {}, outputs: number | readonly string[] = 1): string[] {
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(`${this.scope}/${opType}`)) : [...outputs];
    for (const name of names) this.taken.add(name);
    this.addNamed(opType, inputs, names, attributes);
    return names;
  }

  /** Adds a default-domain node with the given output names (reserved by the caller). */
  addNamed(opType: string, inputs: readonly string[], outputs: readonly string[], attributes: NodeAttributes = {}): NodeProto {
    const node = makeNode(opType, inputs, outputs, attributes, this.fresh(`${this.scope}/${opType}_node`));
    this.graph.node.push(node);
    return node;
  }

  /** `add` with one output. */
  op(opType: string, inputs: readonly string[], attributes: NodeAttributes = {}): string {
    return this.add(opType, inputs, attributes, 1)[0] as string;
  }

  /** A constant initializer; identical constants are shared. */
  constant(values: readonly number[] | TensorArray, dims: readonly number[], dataType?: DataType): string {
    const data: TensorArray = isTensorArray(values) ? values : dataType === DataType.INT64 ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values);
    const type = dataType ?? (data instanceof BigInt64Array ? DataType.INT64 : data instanceof Float64Array ? DataType.DOUBLE : undefined);
    const key = data.length <= 16 ? `${type ?? data.constructor.name}|${dims.join(',')}|${Array.from(data as ArrayLike<number | bigint>, String).join(',')}` : undefined;
    const existing = key === undefined ? undefined : this.sharedConstants.get(key);
    if (existing !== undefined) return existing;
    const name = this.fresh('const');
    this.graph.initializer.push(arrayToTensor(name, data, dims, type));
    if (key !== undefined) this.sharedConstants.set(key, name);
    return name;
  }

  scalar(value: number): string {
    return this.constant(Float32Array.of(value), []);
  }

  ints(values: readonly number[]): string {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);
  }

  /** Shape(name), one node per tensor. */
  shape(name: string): string {
    let shape = this.sharedShapes.get(name);
    if (shape === undefined) {
      shape = this.op('Shape', [name]);
      this.sharedShapes.set(name, shape);
    }
    return shape;
  }

  reduceSum(name: string, axes: readonly number[], keepdims = true): string {
    return this.op('ReduceSum', [name, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  reduceMean(name: string, axes: readonly number[], keepdims = true): string {
    if (this.opset >= 18) return this.op('ReduceMean', [name, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
    return this.op('ReduceMean', [name], { axes: [...axes], keepdims: keepdims ? 1 : 0 });
  }

  dims(name: string): Dim[] | undefined {
    return this.shapes.get(name)?.dims;
  }

  dataType(name: string): DataType {
    return this.shapes.get(name)?.dataType ?? DataType.UNDEFINED;
  }

  /**
   * Sums `gradient` (whose dims are `gradientDims`) over the axes along which `target` was
   * broadcast, then reshapes it to `target`'s shape. The axes are found statically when the
   * shapes say enough (a target dim of 1 facing anything else is summed over, the same symbol
   * on both sides is equal); otherwise, e.g. for unknown shapes or a symbolic target dim that
   * may be 1, they are computed in the graph from the two runtime shapes.
   */
  reduceToShapeOf(gradient: string, gradientDims: readonly Dim[] | undefined, target: string, node: NodeProto): string {
    const targetDims = this.dims(target);
    if (gradientDims === undefined || targetDims === undefined) return this.reduceToRuntimeShapeOf(gradient, target);
    const offset = gradientDims.length - targetDims.length;
    if (offset < 0) {
      throw new UnsupportedOperationError(
        `Cannot reduce the gradient of ${describeNode(node)} [${formatDims(gradientDims)}] to the larger shape of "${target}" [${formatDims(targetDims)}].`,
      );
    }
    const axes: number[] = [];
    let ambiguous = false;
    gradientDims.forEach((dim, axis) => {
      if (axis < offset) {
        axes.push(axis);
        return;
      }
      const targetDim = targetDims[axis - offset];
      if (targetDim === dim || dim === 1) return;
      if (targetDim === 1) {
        axes.push(axis);
        return;
      }
      // An unknown or symbolic target dim facing another size may be 1 at run time.
      if (targetDim === null || targetDim === undefined || typeof targetDim === 'string') {
        ambiguous = true;
        return;
      }
      if (typeof dim === 'number' && dim !== targetDim) {
        throw new UnsupportedOperationError(
          `Cannot reduce the gradient of ${describeNode(node)} [${formatDims(gradientDims)}] to the shape of "${target}" [${formatDims(targetDims)}]: dim ${axis} does not broadcast.`,
        );
      }
    });
    if (ambiguous) return this.reduceToRuntimeShapeOf(gradient, target);
    if (axes.length === 0 && offset === 0) return gradient;
    const summed = axes.length === 0 ? gradient : this.reduceSum(gradient, axes, true);
    if (offset === 0) return summed;
    const staticDims = targetDims.every((d): d is number => typeof d === 'number');
    return this.op('Reshape', [summed, staticDims ? this.ints(targetDims) : this.shape(target)]);
  }

  /**
   * `reduceToShapeOf` with the broadcast axes computed at run time: the target's shape padded
   * with leading ones to the gradient's rank, the axes where it is smaller than the gradient's
   * (NonZero of Less), ReduceSum over those (none is a no-op), Reshape to the target's shape.
   */
  private reduceToRuntimeShapeOf(gradient: string, target: string): string {
    const gradientShape = this.op('Shape', [gradient]);
    const targetShape = this.shape(target);
    const rankDifference = this.op('Sub', [this.op('Shape', [gradientShape]), this.op('Shape', [targetShape])]);
    const ones = this.op('ConstantOfShape', [rankDifference], { value: arrayToTensor('value', BigInt64Array.of(1n), [1]) });
    const padded = this.op('Concat', [ones, targetShape], { axis: 0 });
    const axes = this.op('Reshape', [this.op('NonZero', [this.op('Less', [padded, gradientShape])]), this.ints([-1])]);
    const summed = this.op('ReduceSum', [gradient, axes], { keepdims: 1, noop_with_empty_axes: 1 });
    return this.op('Reshape', [summed, targetShape]);
  }
}

function isTensorArray(values: readonly number[] | TensorArray): values is TensorArray {
  return ArrayBuffer.isView(values);
}

function collectTakenNames(graph: GraphProto, taken: Set<string>): void {
  for (const input of graph.input) taken.add(input.name);
  for (const output of graph.output) taken.add(output.name);
  for (const info of graph.valueInfo) taken.add(info.name);
  for (const tensor of graph.initializer) taken.add(tensor.name);
  for (const node of graph.node) {
    if (node.name !== '') taken.add(node.name);
    for (const name of [...node.input, ...node.output]) if (name !== '') taken.add(name);
    for (const subgraph of subgraphsOf(node)) collectTakenNames(subgraph, taken);
  }
}
