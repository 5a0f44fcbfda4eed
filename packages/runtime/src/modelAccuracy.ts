import type { OnnxModel } from '@open-autoglm/onnx';
import type { Dataset } from './dataset.js';
import { type AccuracyOptions, evaluateAccuracy } from './evaluateAccuracy.js';
import { createSession } from './session.js';
import type { RuntimeTarget } from './target.js';

/**
 * Top-1 accuracy of a model (or its serialized bytes) on a labelled dataset, in a session of its
 * own that is released afterwards (`evaluateAccuracy` works on an open session; the quantizer, the
 * benchmarks and the tests compare many short-lived model variants). Default target: cpu, 1 thread.
 */
export async function modelAccuracy(
  model: OnnxModel | Uint8Array,
  dataset: Dataset,
  target: RuntimeTarget = { device: 'cpu', threads: 1 },
  options: AccuracyOptions = {},
): Promise<number> {
  const session = await createSession(model instanceof Uint8Array ? model : model.toBytes(), target);
  try {
    return (await evaluateAccuracy(session, dataset, options)).accuracy;
  } finally {
    await session.release();
  }
}
