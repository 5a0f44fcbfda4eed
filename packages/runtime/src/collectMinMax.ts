import { UnsupportedOperationError } from '@open-autoglm/core';
import type { Tensor } from 'onnxruntime-node';
import type { OnnxModel } from '@open-autoglm/onnx';
import { addMinMaxOutputs, toOnnxModel } from './activationOutputs.js';
import type { Dataset } from './dataset.js';
import { type InferenceOptions, inferBatches } from './inferBatches.js';
import { createSession, type ModelSource } from './session.js';
import { DEFAULT_RUNTIME_TARGET, type RuntimeTarget } from './target.js';

/** Smallest and largest value a tensor took. */
export interface MinMax {
  min: number;
  max: number;
}

export interface ActivationOptions extends Omit<InferenceOptions, 'outputNames'> {
  /** Where to run; default cpu, 1 thread. */
  target?: RuntimeTarget;
}

/**
 * Running min/max of tensors over a dataset (the MinMax calibration statistic). The reductions run
 * inside the graph (ReduceMin/ReduceMax over all axes), so each batch returns two scalars per
 * tensor and memory does not grow with the number of samples. A NaN in a tensor makes its min
 * and max NaN; +-Inf shows in the min or max.
 */
export async function collectMinMax(
  model: ModelSource | OnnxModel,
  tensorNames: readonly string[],
  dataset: Dataset,
  options: ActivationOptions = {},
): Promise<Map<string, MinMax>> {
  dataset.requireSamples('collect min/max statistics');
  const source = await toOnnxModel(model);
  const augmented = addMinMaxOutputs(source, tensorNames);
  const outputNames = [...augmented.outputs.values()].flatMap((o) => [o.min, o.max, o.nonFiniteCheck]);
  const session = await createSession(augmented.model.toBytes(), options.target ?? DEFAULT_RUNTIME_TARGET, {
    file: source.source,
  });
  const stats = new Map<string, MinMax>();
  for (const name of augmented.outputs.keys()) {
    stats.set(name, { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY });
  }
  try {
    for await (const part of inferBatches(session, dataset, { ...options, outputNames })) {
      for (const [name, outputs] of augmented.outputs) {
        const stat = stats.get(name) as MinMax;
        const min = scalarOf(part.outputs[outputs.min], name);
        const max = scalarOf(part.outputs[outputs.max], name);
        // The check is NaN for NaN or Inf; with a finite min and max it can only be a NaN, which
        // ReduceMin/ReduceMax skipped. Math.min/max then propagate it, as a calibrator must notice.
        const holdsNaN = Number.isNaN(scalarOf(part.outputs[outputs.nonFiniteCheck], name)) && Number.isFinite(min) && Number.isFinite(max);
        stat.min = holdsNaN ? Number.NaN : Math.min(stat.min, min);
        stat.max = holdsNaN ? Number.NaN : Math.max(stat.max, max);
      }
    }
  } finally {
    await session.release();
  }
  return stats;
}

function scalarOf(tensor: Tensor | undefined, name: string): number {
  const value = tensor?.data[0];
  if (typeof value !== 'number' && typeof value !== 'bigint') {
    throw new UnsupportedOperationError(
      `Tensor "${name}" gave no numeric min/max (element type ${tensor?.type ?? 'unknown'}); ` +
        'statistics can be collected only for numeric tensors.',
    );
  }
  return Number(value);
}
