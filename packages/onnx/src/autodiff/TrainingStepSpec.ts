import { ModelFormatError } from '@open-autoglm/core';
import type { Dim } from '../inferShapes.js';
import { OnnxModel } from '../OnnxModel.js';
import type { ModelProto } from '../proto.js';
import type { GradientRuleTable, TrainingMode } from './GradientRule.js';

/**
 * One term of the loss; the step's loss is the sum of `weight * term` over the terms
 * (`weight` defaults to 1). Every mean is over the batch as it is fed (the batch size is read
 * from the tensors, so any batch size works with one graph).
 *
 * - `crossEntropy`: softmax cross-entropy of the logits against int64 class labels, mean over
 *   the batch (PyTorch `F.cross_entropy`).
 * - `distillation`: `alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) *
 *   crossEntropy`, the KL summed over classes and averaged over the batch (Hinton et al.;
 *   PyTorch `KLDivLoss(reduction='batchmean')` on log-softmax inputs). The teacher logits are an
 *   input of the step; with `alpha = 1` no labels are needed.
 * - `mse`: for each pair, the mean over all elements of `(student - teacher)^2` (PyTorch
 *   `F.mse_loss`), where `student` names a float tensor of the model (any node output) and the
 *   teacher tensor is an input of the step of the same shape (feature distillation).
 * - `weightDecay`: `coefficient / 2 * sum(w^2)` over `parameters` (default: every trainable
 *   parameter), whose gradient `coefficient * w` is PyTorch's L2 weight decay. Prefer the
 *   optimizer's `weightDecay` when the decay need not show in the reported loss.
 */
export type LossTerm =
  | { readonly kind: 'crossEntropy'; readonly weight?: number }
  | { readonly kind: 'distillation'; readonly temperature: number; readonly alpha: number; readonly weight?: number }
  | { readonly kind: 'mse'; readonly pairs: readonly MsePair[]; readonly weight?: number }
  | { readonly kind: 'weightDecay'; readonly coefficient: number; readonly parameters?: readonly string[] };

/** A student tensor of the model and the name of the step input that holds its target. */
export interface MsePair {
  /** A float tensor of the model (a node output or the model output). */
  readonly student: string;
  /** Name of the step input carrying the teacher's tensor; default `teacher.<student>`. */
  readonly teacher?: string;
}

/**
 * The optimizer applied in the graph, with PyTorch's semantics and defaults.
 *
 * - `sgd` (torch.optim.SGD): `g += weightDecay * p`; with momentum, `buf = momentum * buf +
 *   (1 - dampening) * g` (`buf = g` on step 1), then `g = g + momentum * buf` (Nesterov) or
 *   `g = buf`; `p -= lr * g`. State: `momentum` per parameter (only when momentum > 0).
 * - `adam` (torch.optim.Adam): `g += weightDecay * p`; `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2)
 *   g^2`; `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)` with `t` the step input.
 *   State: `exp_avg` and `exp_avg_sq` per parameter.
 * - `adamw` (torch.optim.AdamW): as `adam` but decoupled decay `p *= 1 - lr * weightDecay`
 *   before the update (default weightDecay 0.01).
 */
export type OptimizerSpec =
  | {
      readonly kind: 'sgd';
      /** Default 0 (plain SGD, no state). */
      readonly momentum?: number;
      /** Default 0. */
      readonly dampening?: number;
      /** Default false; needs momentum > 0 and dampening 0, as in PyTorch. */
      readonly nesterov?: boolean;
      /** L2 penalty added to the gradient; default 0. */
      readonly weightDecay?: number;
    }
  | {
      readonly kind: 'adam' | 'adamw';
      /** Default 0.9. */
      readonly beta1?: number;
      /** Default 0.999. */
      readonly beta2?: number;
      /** Default 1e-8. */
      readonly epsilon?: number;
      /** Default 0 for adam (L2 added to the gradient), 0.01 for adamw (decoupled). */
      readonly weightDecay?: number;
    };

/**
 * How the input gradient dL/dX of an ordinary stride-1 convolution Y = Conv(X, W) is built:
 * - `transposedConv`: ConvTranspose(dY, W) with the forward window layout (every convolution).
 * - `flippedConv`: Conv(dY, W') with W' the kernel with its two channel axes exchanged per group
 *   and flipped spatially, pads (k - 1) * dilation - pad. Measured no faster than
 *   `transposedConv` on the fixture models with onnxruntime's CPU provider (see the rule's
 *   comment in rules/convolutionGradients.ts); kept for other providers and for measuring.
 * Strided convolutions always take `transposedConv` (as do pads larger than the kernel's reach),
 * depthwise stride-1 convolutions always `flippedConv`.
 */
export type ConvolutionInputGradient = 'transposedConv' | 'flippedConv';

/** What `buildTrainingStep` builds. */
export interface TrainingStepSpec {
  /**
   * The parameters to train, by initializer name. Default: every parameter as PyTorch counts
   * them (see `countModelStats`): float initializers read as weights, biases, norm scales,
   * embeddings; never BatchNorm running statistics nor shape constants.
   */
  readonly trainable?: readonly string[];
  /** Parameters to leave out of the default set (ignored when `trainable` is given). */
  readonly frozen?: readonly string[];
  /** See `TrainingMode`; default `train`. */
  readonly mode?: TrainingMode;
  /** The logits tensor the classification losses and the correct count read; default the model's first output. */
  readonly logits?: string;
  /** The terms of the loss (at least one). */
  readonly loss: readonly LossTerm[];
  readonly optimizer: OptimizerSpec;
  /**
   * Also output the gradient of the loss with respect to every trainable parameter
   * (`TrainedParameter.gradient`), e.g. for gradient checks, clipping statistics or Taylor
   * importance. Default false.
   */
  readonly exposeGradients?: boolean;
  /** See `ConvolutionInputGradient`; default `transposedConv`. */
  readonly convolutionInputGradient?: ConvolutionInputGradient;
  /** Extra or replacement gradient rules by op type, on top of `gradientRules`. */
  readonly rules?: GradientRuleTable;
}

/** One tensor of the step's signature. */
export interface StepTensor {
  readonly name: string;
  /** onnxruntime's type name ('float32', 'int64', ...; see `dataTypeName`). */
  readonly type: string;
  /** Dims; the batch axis is the symbol 'batch' (any size). */
  readonly dims: readonly Dim[];
}

/** A trainable parameter: fed in, updated value out. */
export interface TrainedParameter {
  /**
   * The input holding the current value: the parameter's name in the source model (its
   * initializer, or for a parameter an exporter merged with an identical one, the output of the
   * Identity that reads the shared copy).
   */
  readonly name: string;
  /** The initializer of the source model holding the initial value (differs from `name` for merged parameters). */
  readonly initializer: string;
  /** The output holding the value after this step's update. */
  readonly updated: string;
  /** The output holding the loss gradient, when `exposeGradients` was set. */
  readonly gradient?: string;
  readonly dims: readonly number[];
  /** The optimizer state of this parameter: fed in (zeros before the first step), updated value out. */
  readonly state: readonly OptimizerStateTensor[];
}

export interface OptimizerStateTensor {
  /** `momentum` (SGD), `exp_avg` / `exp_avg_sq` (Adam, AdamW): PyTorch's state keys. */
  readonly slot: 'momentum' | 'exp_avg' | 'exp_avg_sq';
  readonly name: string;
  readonly updated: string;
  readonly dims: readonly number[];
}

/** A non-trainable tensor that training changes (BatchNorm running mean/variance in `train` mode). */
export interface TrainingBuffer {
  /** The input holding the current value (the initializer of the same name in the source model holds the initial value). */
  readonly name: string;
  /** The output holding the value after this step. */
  readonly updated: string;
  readonly dims: readonly number[];
}

/**
 * The exact inputs and outputs of a training-step model, stored in the model itself (see
 * `describeTrainingStep`).
 *
 * Feeding one step: every parameter (`parameters[i].name`), every optimizer state tensor
 * (`parameters[i].state[j].name`), every buffer, `step` (int64 scalar: the 1-based number of
 * this update, i.e. 1 on the first step; Adam's bias correction uses it), `learningRate`
 * (float32 scalar, e.g. from `learningRateAt`), the `batchInputs`, and `labels`,
 * `teacherLogits` and `teacherFeatures` when present. Outputs: `loss` (float32 scalar),
 * `correct` (int64 scalar: how many arg-max predictions equal the labels; present when the
 * step has labels), each parameter's `updated` value (and `gradient`), each state's and
 * buffer's `updated` value. Feed the updated values back as the next step's inputs.
 *
 * Parameters and buffers are plain graph inputs: their initial values stay in the source model
 * (`initialTrainingState(source, signature)` reads them, with zeros for the optimizer state),
 * and `writeTrainedParameters` puts trained values back into it. (They are not kept as
 * overridable initializers: onnxruntime's JavaScript API cannot feed those.) Frozen parameters
 * and other constants stay initializers of the step. Output names never collide with input
 * names.
 */
export interface TrainingStepSignature {
  /** Version of this description's layout. */
  readonly version: 1;
  readonly mode: TrainingMode;
  /** The optimizer with every default filled in. */
  readonly optimizer: Required<OptimizerSpec>;
  /** The terms of the loss, as given in the spec. */
  readonly lossTerms: readonly LossTerm[];
  readonly parameters: readonly TrainedParameter[];
  readonly buffers: readonly TrainingBuffer[];
  /** Parameters (by the default rule) left out of training; they stay initializers. */
  readonly frozen: readonly string[];
  /** Trainable parameters that do not influence the loss: left as initializers, not updated. */
  readonly unused: readonly string[];
  /** int64 scalar input, 1-based number of the update. */
  readonly step: string;
  /** float32 scalar input. */
  readonly learningRate: string;
  /** The source model's inputs (batch axis 'batch'). */
  readonly batchInputs: readonly StepTensor[];
  /** int64 [batch] class labels, when a loss term or the correct count needs them. */
  readonly labels?: StepTensor;
  /** float32 teacher logits shaped like the student's, for the distillation term. */
  readonly teacherLogits?: StepTensor;
  /** Teacher tensors of the mse term, with the student tensor each one matches. */
  readonly teacherFeatures: readonly (StepTensor & { readonly student: string })[];
  /** float32 scalar output. */
  readonly loss: string;
  /** int64 scalar output, present with `labels`. */
  readonly correct?: string;
  /** The logits tensor the losses read. */
  readonly logits: string;
}

/** Key of the model metadata entry holding the signature as JSON. */
export const TRAINING_STEP_METADATA_KEY = 'open-autoglm.training-step';

/**
 * The signature of a model built by `buildTrainingStep` (read back from its metadata, so it
 * survives saving and loading the step model). Throws ModelFormatError when the model is not a
 * training step.
 */
export function describeTrainingStep(model: OnnxModel | ModelProto): TrainingStepSignature {
  const proto = model instanceof OnnxModel ? model.proto : model;
  const entry = proto.metadataProps.find((p) => p.key === TRAINING_STEP_METADATA_KEY);
  if (entry === undefined) {
    throw new ModelFormatError(
      `This model is not a training step (it has no "${TRAINING_STEP_METADATA_KEY}" metadata). ` +
        'Build one from an inference model with buildTrainingStep(model, spec).',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value);
  } catch (error) {
    throw new ModelFormatError(
      `The training-step metadata of this model is not valid JSON (${(error as Error).message}). Rebuild the step with buildTrainingStep.`,
      { cause: error },
    );
  }
  const version = (parsed as { version?: unknown } | null)?.version;
  if (version !== 1) {
    throw new ModelFormatError(
      `The training-step metadata of this model has layout version ${String(version)}, but this version of ` +
        '@open-autoglm/onnx reads version 1. Rebuild the step with buildTrainingStep.',
    );
  }
  return parsed as TrainingStepSignature;
}
