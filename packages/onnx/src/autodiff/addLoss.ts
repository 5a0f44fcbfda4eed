import { ConfigError } from '@open-autoglm/core';
import type { Dim } from '../inferShapes.js';
import { DataType } from '../proto.js';
import type { StepGraphBuilder } from './StepGraphBuilder.js';
import type { LossTerm, StepTensor } from './TrainingStepSpec.js';

/** The loss nodes of a step: its outputs, new inputs, and where the gradient starts. */
export interface LossGraph {
  /** float32 scalar: the weighted sum of the terms. */
  readonly loss: string;
  /** int64 scalar: correct arg-max predictions, when there are labels. */
  readonly correct: string | undefined;
  readonly labels: StepTensor | undefined;
  readonly teacherLogits: StepTensor | undefined;
  readonly teacherFeatures: (StepTensor & { readonly student: string })[];
  /** Gradient contributions of the loss, by the tensor they are the gradient of (logits, features, parameters). */
  readonly seeds: Map<string, string[]>;
}

export interface LossInputs {
  readonly terms: readonly LossTerm[];
  readonly logits: string;
  /** The trainable parameters (the default set of a weightDecay term). */
  readonly trainable: readonly string[];
  /** The name of the batch axis, for the signature of labels and teacher tensors. */
  readonly batchSymbol: string;
}

/**
 * Adds the loss terms to the step graph with their gradients in closed form (softmax minus
 * one-hot, and so on): those are exact, cheaper than differentiating the loss ops one by one,
 * and keep the loss independent of which op rules exist.
 */
export function addLoss(builder: StepGraphBuilder, inputs: LossInputs): LossGraph {
  const { terms, logits } = inputs;
  const seeds = new Map<string, string[]>();
  const seed = (tensor: string, gradient: string): void => {
    const list = seeds.get(tensor);
    if (list === undefined) seeds.set(tensor, [gradient]);
    else list.push(gradient);
  };
  const values: string[] = [];
  const weighted = (value: string, weight: number): string => (weight === 1 ? value : builder.op('Mul', [value, builder.scalar(weight)]));

  const logitsDims = builder.dims(logits);
  const usesLogits = terms.some((t) => t.kind === 'crossEntropy' || t.kind === 'distillation');
  if (usesLogits && logitsDims !== undefined && logitsDims.length !== 2) {
    throw new ConfigError(
      `The classification loss reads logits "${logits}" of shape [${logitsDims.join(', ')}], but it needs [batch, classes]. ` +
        'Name the right tensor with the spec\'s `logits`, or use an mse term for other outputs.',
    );
  }
  const needsLabels = terms.some((t) => t.kind === 'crossEntropy' || (t.kind === 'distillation' && t.alpha < 1));
  const batchDim: Dim = logitsDims?.[0] ?? inputs.batchSymbol;
  const labels: StepTensor | undefined = needsLabels
    ? { name: builder.fresh('labels'), type: 'int64', dims: [typeof batchDim === 'number' ? batchDim : inputs.batchSymbol] }
    : undefined;

  let batchSize: string | undefined;
  const batchSizeOf = (): string => {
    batchSize ??= builder.op('Cast', [builder.op('Gather', [builder.shape(logits), builder.constant(BigInt64Array.of(0n), [])])], { to: DataType.FLOAT });
    return batchSize;
  };

  // Cross-entropy value and gradient, shared by the crossEntropy and distillation terms.
  let crossEntropy: { value: string; gradient: string } | undefined;
  const crossEntropyOf = (): { value: string; gradient: string } => {
    if (crossEntropy !== undefined) return crossEntropy;
    if (labels === undefined) throw new Error('labels exist whenever a term needs cross-entropy');
    const logProbabilities = builder.op('LogSoftmax', [logits], { axis: 1 });
    const picked = builder.op('GatherElements', [logProbabilities, builder.op('Unsqueeze', [labels.name, builder.ints([1])])], { axis: 1 });
    const value = builder.op('Div', [builder.op('Neg', [builder.op('ReduceSum', [picked], { keepdims: 0 })]), batchSizeOf()]);
    const classes = builder.op('Gather', [builder.shape(logits), builder.constant(BigInt64Array.of(1n), [])]);
    const oneHot = builder.op('OneHot', [labels.name, classes, builder.constant([0, 1], [2])], { axis: -1 });
    const probabilities = builder.op('Exp', [logProbabilities]);
    const gradient = builder.op('Div', [builder.op('Sub', [probabilities, oneHot]), batchSizeOf()]);
    crossEntropy = { value, gradient };
    return crossEntropy;
  };

  let teacherLogits: StepTensor | undefined;
  const teacherFeatures: (StepTensor & { student: string })[] = [];
  for (const term of terms) {
    switch (term.kind) {
      case 'crossEntropy': {
        const weight = term.weight ?? 1;
        const { value, gradient } = crossEntropyOf();
        values.push(weighted(value, weight));
        seed(logits, weighted(gradient, weight));
        break;
      }
      case 'distillation': {
        const weight = term.weight ?? 1;
        const { temperature: t, alpha } = term;
        teacherLogits ??= {
          name: builder.fresh('teacher_logits'),
          type: 'float32',
          dims: (logitsDims ?? [inputs.batchSymbol, null]).map((d, axis) => (axis === 0 && typeof d !== 'number' ? inputs.batchSymbol : d)),
        };
        const studentLog = builder.op('LogSoftmax', [builder.op('Div', [logits, builder.scalar(t)])], { axis: 1 });
        const teacherLog = builder.op('LogSoftmax', [builder.op('Div', [teacherLogits.name, builder.scalar(t)])], { axis: 1 });
        const teacherProbabilities = builder.op('Exp', [teacherLog]);
        const klSum = builder.op('ReduceSum', [builder.op('Mul', [teacherProbabilities, builder.op('Sub', [teacherLog, studentLog])])], { keepdims: 0 });
        const kl = builder.op('Div', [klSum, batchSizeOf()]);
        values.push(weighted(kl, weight * alpha * t * t));
        // d(T^2 KL)/dz = T (softmax(z/T) - softmax(teacher/T)) / batch
        const difference = builder.op('Sub', [builder.op('Exp', [studentLog]), teacherProbabilities]);
        seed(logits, weighted(builder.op('Div', [difference, batchSizeOf()]), weight * alpha * t));
        if (alpha < 1) {
          const { value, gradient } = crossEntropyOf();
          values.push(weighted(value, weight * (1 - alpha)));
          seed(logits, weighted(gradient, weight * (1 - alpha)));
        }
        break;
      }
      case 'mse': {
        const weight = term.weight ?? 1;
        for (const pair of term.pairs) {
          const dims = builder.dims(pair.student);
          if (dims === undefined || ![DataType.FLOAT, DataType.UNDEFINED].includes(builder.dataType(pair.student))) {
            throw new ConfigError(
              `The mse loss term names student tensor "${pair.student}", which is not a float tensor of the model` +
                `${dims === undefined ? ' with a known shape' : ''}. Name a node output (see autoglm inspect --layers).`,
            );
          }
          const teacher = {
            name: builder.fresh(pair.teacher ?? `teacher.${pair.student}`),
            type: 'float32' as const,
            dims: dims.map((d, axis) => (axis === 0 && typeof d !== 'number' ? inputs.batchSymbol : d)),
            student: pair.student,
          };
          if (pair.teacher !== undefined && teacher.name !== pair.teacher) {
            throw new ConfigError(`The mse loss term's teacher input "${pair.teacher}" is already a tensor of the model. Choose another name.`);
          }
          teacherFeatures.push(teacher);
          const difference = builder.op('Sub', [pair.student, teacher.name]);
          const value = builder.op('ReduceMean', [builder.op('Mul', [difference, difference])], { keepdims: 0 });
          values.push(weighted(value, weight));
          const count = builder.op('Cast', [builder.op('Size', [pair.student])], { to: DataType.FLOAT });
          const scale = builder.op('Div', [builder.scalar(2 * weight), count]);
          seed(pair.student, builder.op('Mul', [difference, scale]));
        }
        break;
      }
      case 'weightDecay': {
        const parameters = term.parameters ?? inputs.trainable;
        for (const parameter of parameters) {
          if (!inputs.trainable.includes(parameter)) {
            throw new ConfigError(`The weightDecay loss term names "${parameter}", which is not a trainable parameter of this step.`);
          }
          const squares = builder.op('ReduceSum', [builder.op('Mul', [parameter, parameter])], { keepdims: 0 });
          values.push(weighted(squares, term.coefficient / 2));
          seed(parameter, builder.op('Mul', [parameter, builder.scalar(term.coefficient)]));
        }
        break;
      }
    }
  }

  const loss = builder.fresh('loss');
  if (values.length === 1) builder.addNamed('Identity', [values[0] as string], [loss]);
  else builder.addNamed('Sum', values, [loss]);

  let correct: string | undefined;
  if (labels !== undefined) {
    correct = builder.fresh('correct');
    const predicted = builder.op('ArgMax', [logits], { axis: 1, keepdims: 0 });
    const hits = builder.op('Cast', [builder.op('Equal', [predicted, labels.name])], { to: DataType.INT64 });
    builder.addNamed('ReduceSum', [hits], [correct], { keepdims: 0 });
  }
  return { loss, correct, labels, teacherLogits, teacherFeatures, seeds };
}
