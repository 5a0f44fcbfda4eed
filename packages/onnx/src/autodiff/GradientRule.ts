import type { Dim } from '../inferShapes.js';
import type { NodeAttributes } from '../OnnxGraph.js';
import type { DataType, NodeProto } from '../proto.js';
import type { TensorArray } from '../tensor.js';

/**
 * Whether the step trains the model's statistics layers: `train` normalizes BatchNormalization
 * with batch statistics (and outputs its updated running statistics) and makes Dropout drop;
 * `eval` keeps the inference behaviour (running statistics, Dropout as identity) and only
 * trains the parameters, as when fine-tuning with frozen BatchNorm.
 */
export type TrainingMode = 'train' | 'eval';

/**
 * Node-building helpers shared by the forward rewrite and the backward pass of a rule. Every
 * node goes into the training graph; the builder sorts the graph topologically at the end, so
 * nodes can be added in any order. Names are made unique for you.
 */
export interface GraphBuilderContext {
  /** The forward node this rule is applied to (a copy inside the training graph). */
  readonly node: NodeProto;
  /** See `TrainingMode`. */
  readonly mode: TrainingMode;
  /** The default-domain opset of the training graph (always >= 17). */
  readonly opset: number;

  /** The name of the node's input `slot` ('' when the optional input is absent or out of range). */
  input(slot: number): string;
  /** The name of the node's output `slot` ('' when absent). */
  output(slot: number): string;
  /**
   * The element type and dims of a tensor of the forward graph (node inputs and outputs), from
   * shape inference with the batch axis kept symbolic (e.g. `['batch', 6, 28, 28]`); undefined
   * for tensors whose shape is unknown and for tensors added by rules.
   */
  dims(name: string): Dim[] | undefined;
  /** The element type of a forward tensor (DataType.UNDEFINED when unknown). */
  dataType(name: string): DataType;

  /** A fresh tensor name derived from `hint`, unique in the training graph. */
  freshName(hint: string): string;
  /**
   * Adds a node of the default domain and returns its output names. `outputs` is either how
   * many fresh outputs to make (default 1) or their names: existing names to produce a given
   * tensor (e.g. the outputs of a node a forward rewrite removed), '' to leave an optional
   * output out. Plain attribute values follow `makeAttribute` (an integral number becomes INT):
   * pass `makeAttribute(name, 1, true)` to force FLOAT.
   */
  add(opType: string, inputs: readonly string[], attributes?: NodeAttributes, outputs?: number | readonly string[]): string[];
  /** `add` for a node with exactly one output; returns that output's name. */
  op(opType: string, inputs: readonly string[], attributes?: NodeAttributes): string;
  /** A constant tensor (an initializer); float32 unless `dataType` says otherwise or `values` is typed. */
  constant(values: readonly number[] | TensorArray, dims: readonly number[], dataType?: DataType): string;
  /** A float32 scalar constant (shape []), shared between uses of the same value. */
  scalar(value: number): string;
  /** An int64 1-D constant, e.g. axes or a shape; shared between uses of the same values. */
  ints(values: readonly number[]): string;
  /** The int64 shape of a tensor (one Shape node per tensor, shared). */
  shape(name: string): string;
  /** ReduceSum over `axes` in the opset's form (axes as an input); `keepdims` defaults to true. */
  reduceSum(name: string, axes: readonly number[], keepdims?: boolean): string;
  /** ReduceMean over `axes` in the opset's form (attribute before opset 18, input from 18). */
  reduceMean(name: string, axes: readonly number[], keepdims?: boolean): string;
  /**
   * Sums a gradient computed in a broadcast shape down to the shape of forward tensor `target`
   * (numpy rules): ReduceSum over the broadcast axes, then a Reshape when ranks differ. The
   * gradient's shape is that of forward tensor `shapeLike` (default: the node's output 0), or
   * the dims given there. Returns `gradient` unchanged when the shapes are known to be equal;
   * when a shape is unknown, the axes are computed in the graph from the runtime shapes.
   */
  reduceToShapeOf(gradient: string, target: string, shapeLike?: string | readonly Dim[]): string;
}

/** What a rule's `rewriteForward` may do besides adding nodes. */
export interface ForwardRewriteContext extends GraphBuilderContext {
  /**
   * Removes the node from the training graph. Nodes added by the rule must then produce the
   * node's outputs (same names), and their own rules differentiate them: a rewrite can
   * decompose an op into simpler ones that already have gradients.
   */
  removeNode(): void;
  /**
   * Declares that non-trainable initializer `buffer` (e.g. a BatchNormalization running mean)
   * changes during training: the step takes it as an input and outputs `updatedValue` as its
   * new value (see `TrainingStepSignature.buffers`).
   */
  updateBuffer(buffer: string, updatedValue: string): void;
}

/** What a rule's `backward` sees: the helpers plus the gradients flowing in. */
export interface GradientContext extends GraphBuilderContext {
  /**
   * True when input `slot` needs a gradient: it is a float tensor computed from a trainable
   * parameter. A rule may skip the work for inputs that do not.
   */
  needsGradient(slot: number): boolean;
  /**
   * The gradient of the loss with respect to output `slot` (same shape as that output), or
   * undefined when that output does not influence the loss. At least one output has one.
   */
  outputGradient(slot: number): string | undefined;
  /** `outputGradient(slot)`, or zeros shaped like the output when it has none. */
  outputGradientOrZeros(slot: number): string;
}

/**
 * The gradient of one operator. Rules are stateless objects; one rule may serve several op
 * types (the context's `node.opType` tells which).
 */
export interface GradientRule {
  /**
   * Builds the gradients of the node's inputs from the gradients of its outputs and returns
   * them by input slot: `result[slot]` is the name of a tensor with the shape of input `slot`,
   * or undefined for inputs without a gradient (integer inputs, shapes, axes, or any input for
   * which `needsGradient(slot)` is false). Returning undefined for an input that needs a
   * gradient makes `buildTrainingStep` fail with UnsupportedOperationError naming the input, so
   * a rule states its limits by leaving them undefined (e.g. Clip's min and max).
   */
  backward(context: GradientContext): ReadonlyArray<string | undefined>;
  /**
   * Optional change to the forward node before any gradient is built, called for every node of
   * this op type in the model (whether on a trainable path or not), in both modes: e.g.
   * BatchNormalization in `train` mode switches to batch statistics and declares its running
   * statistics as buffers, Dropout in `train` mode gets `training_mode = true` and its mask
   * output. Rules read `context.mode` to decide.
   */
  rewriteForward?(context: ForwardRewriteContext): void;
  /**
   * True for an op whose integer outputs still carry a gradient, as QuantizeLinear's do in a
   * straight-through fake quantization (QuantizeLinear -> DequantizeLinear): `buildTrainingStep`
   * then follows them like float tensors, and the consumers' rules must give gradients for them.
   */
  readonly integerOutputsCarryGradient?: boolean;
}

/**
 * Rules by op type (default ONNX domain). Each rule file exports one of these; `rules/index.ts`
 * merges them into `gradientRules`, the table `buildTrainingStep` uses by default.
 */
export type GradientRuleTable = Readonly<Record<string, GradientRule>>;
