import type { Dim } from '../inferShapes.js';
import type { NodeAttributes } from '../OnnxGraph.js';
import type { DataType, NodeProto } from '../proto.js';
import { arrayToTensor, type TensorArray } from '../tensor.js';
import type { ForwardRewriteContext, GradientContext, GraphBuilderContext, TrainingMode } from './GradientRule.js';
import type { StepGraphBuilder } from './StepGraphBuilder.js';

/** The helpers every rule context shares, bound to one node. */
export function builderContext(builder: StepGraphBuilder, node: NodeProto, mode: TrainingMode): GraphBuilderContext {
  return {
    node,
    mode,
    opset: builder.opset,
    input: (slot: number) => node.input[slot] ?? '',
    output: (slot: number) => node.output[slot] ?? '',
    dims: (name: string): Dim[] | undefined => builder.dims(name),
    dataType: (name: string): DataType => builder.dataType(name),
    freshName: (hint: string) => builder.fresh(hint),
    add: (opType: string, inputs: readonly string[], attributes?: NodeAttributes, outputs?: number | readonly string[]) =>
      builder.add(opType, inputs, attributes, outputs),
    op: (opType: string, inputs: readonly string[], attributes?: NodeAttributes) => builder.op(opType, inputs, attributes),
    constant: (values: readonly number[] | TensorArray, dims: readonly number[], dataType?: DataType) =>
      builder.constant(values, dims, dataType),
    scalar: (value: number) => builder.scalar(value),
    ints: (values: readonly number[]) => builder.ints(values),
    shape: (name: string) => builder.shape(name),
    reduceSum: (name: string, axes: readonly number[], keepdims?: boolean) => builder.reduceSum(name, axes, keepdims),
    reduceMean: (name: string, axes: readonly number[], keepdims?: boolean) => builder.reduceMean(name, axes, keepdims),
    reduceToShapeOf: (gradient: string, target: string, shapeLike?: string | readonly Dim[]) =>
      builder.reduceToShapeOf(gradient, typeof shapeLike === 'object' ? shapeLike : builder.dims(shapeLike ?? node.output[0] ?? ''), target, node),
  };
}

export interface ForwardRewriteEffects {
  removed: boolean;
  readonly bufferUpdates: Map<string, string>;
}

export function forwardRewriteContext(
  builder: StepGraphBuilder,
  node: NodeProto,
  mode: TrainingMode,
  effects: ForwardRewriteEffects,
): ForwardRewriteContext {
  return {
    ...builderContext(builder, node, mode),
    removeNode: () => {
      effects.removed = true;
    },
    updateBuffer: (buffer: string, updatedValue: string) => {
      effects.bufferUpdates.set(buffer, updatedValue);
    },
  };
}

export function gradientContext(
  builder: StepGraphBuilder,
  node: NodeProto,
  mode: TrainingMode,
  needsGradient: (name: string) => boolean,
  outputGradient: (slot: number) => string | undefined,
): GradientContext {
  const base = builderContext(builder, node, mode);
  return {
    ...base,
    needsGradient: (slot: number) => needsGradient(node.input[slot] ?? ''),
    outputGradient,
    outputGradientOrZeros: (slot: number) => {
      const gradient = outputGradient(slot);
      if (gradient !== undefined) return gradient;
      const output = base.output(slot);
      return builder.op('ConstantOfShape', [builder.shape(output)], { value: arrayToTensor('value', Float32Array.of(0), [1]) });
    },
  };
}
