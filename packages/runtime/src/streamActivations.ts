import type { OnnxModel } from '@open-autoglm/onnx';
import { exposeTensors, toOnnxModel } from './activationOutputs.js';
import type { ActivationOptions } from './collectMinMax.js';
import type { Dataset } from './dataset.js';
import { inferBatches } from './inferBatches.js';
import { createSession, type ModelSource, type TensorMap } from './session.js';
import { DEFAULT_RUNTIME_TARGET } from './target.js';

/** The full values of the requested tensors for one batch. */
export interface ActivationBatch {
  readonly start: number;
  readonly size: number;
  /** Tensor name -> its value for this batch (dims start with the batch axis for activations). */
  readonly tensors: TensorMap;
}

/**
 * Streams the full values of intermediate tensors batch by batch (for histograms, debugging or
 * feature distillation). Only the current batch is held; the consumer must reduce it before
 * asking for the next, or memory grows with the dataset. The session is released when the loop
 * ends, including on `break`.
 */
export async function* streamActivations(
  model: ModelSource | OnnxModel,
  tensorNames: readonly string[],
  dataset: Dataset,
  options: ActivationOptions = {},
): AsyncGenerator<ActivationBatch> {
  const source = await toOnnxModel(model);
  const exposed = exposeTensors(source, tensorNames);
  const session = await createSession(exposed.toBytes(), options.target ?? DEFAULT_RUNTIME_TARGET, { file: source.source });
  try {
    for await (const part of inferBatches(session, dataset, { ...options, outputNames: [...new Set(tensorNames)] })) {
      yield { start: part.start, size: part.size, tensors: part.outputs };
    }
  } finally {
    await session.release();
  }
}
