import { ConfigError } from '@open-autoglm/core';
import { buildTrainingStep, type OnnxModel, refreezeQuantizedWeights, unfreezeQuantizedWeights } from '@open-autoglm/onnx';
import { type Dataset, type EpochSummary, type RuntimeTarget, Trainer } from '@open-autoglm/runtime';
import { quantizeStatic, type StaticQuantizationOptions, type StaticQuantizationResult } from './quantizeStatic.js';

export interface QuantizationAwareTrainingOptions extends StaticQuantizationOptions {
  /** Labelled training data for the fine-tuning. */
  train: Dataset;
  /** Evaluated (top-1) after every epoch when given. */
  validation?: Dataset;
  /** Default 1. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** AdamW learning rate; default 1e-4 (a fine-tuning rate: the weights start trained). */
  learningRate?: number;
  /** Seeds the shuffling; default 0. */
  seed?: number;
  /** Where training runs; default one CPU thread. */
  trainingTarget?: RuntimeTarget;
}

export interface QuantizationAwareTrainingResult {
  /** The fine-tuned model as real QDQ (int8 weights, int32 biases), like `quantizeStatic`'s. */
  readonly model: OnnxModel;
  /** The post-training quantization the fine-tuning started from. */
  readonly initial: StaticQuantizationResult;
  readonly history: readonly EpochSummary[];
}

/**
 * Quantization-aware training: static post-training quantization first, then every int8 weight
 * becomes a float parameter behind QuantizeLinear -> DequantizeLinear (fake quantization, whose
 * gradient the autodiff passes straight through inside the clamp range) and every int32 bias a
 * float parameter; the model is fine-tuned with cross-entropy on labelled data (AdamW) on the
 * training engine, and exported back as real QDQ with the same scales and zero points.
 */
export async function quantizationAwareTraining(
  model: OnnxModel,
  calibration: Dataset,
  options: QuantizationAwareTrainingOptions,
): Promise<QuantizationAwareTrainingResult> {
  if (options.train.labels === undefined) {
    throw new ConfigError('Quantization-aware training fine-tunes on labelled data: give the training set with labels (y).');
  }
  const initial = await quantizeStatic(model, calibration, options);
  const fake = initial.model.clone();
  const quantized = unfreezeQuantizedWeights(fake);
  const trainable = [...quantized.weights, ...quantized.biases].map((parameter) => parameter.float);
  const step = buildTrainingStep(fake, {
    trainable,
    loss: [{ kind: 'crossEntropy' }],
    optimizer: { kind: 'adamw', weightDecay: 0 },
  });
  const trainer = await Trainer.create({
    model: fake,
    step: step.model,
    train: options.train,
    ...(options.validation === undefined ? {} : { validation: options.validation }),
    epochs: options.epochs ?? 1,
    batchSize: options.batchSize ?? 64,
    learningRate: options.learningRate ?? 1e-4,
    seed: options.seed ?? 0,
    ...(options.trainingTarget === undefined ? {} : { target: options.trainingTarget }),
  });
  let result: Awaited<ReturnType<Trainer['train']>>;
  let trained: OnnxModel;
  try {
    result = await trainer.train();
    trained = trainer.exportModel();
  } finally {
    await trainer.release();
  }
  refreezeQuantizedWeights(trained, quantized);
  return { model: trained, initial, history: result.history };
}
