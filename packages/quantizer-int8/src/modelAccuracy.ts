import type { OnnxModel } from '@open-autoglm/onnx';
import { createSession, type Dataset, evaluateAccuracy, type RuntimeTarget } from '@open-autoglm/runtime';

/**
 * Top-1 accuracy of a model (or its serialized bytes) on a labelled dataset, in a session of its
 * own that is released afterwards: runtime's `evaluateAccuracy` works on an open session, and the
 * quantizer compares many short-lived model variants. Default target: cpu, 1 thread.
 */
export async function modelAccuracy(
  model: OnnxModel | Uint8Array,
  dataset: Dataset,
  target: RuntimeTarget = { device: 'cpu', threads: 1 },
): Promise<number> {
  const session = await createSession(model instanceof Uint8Array ? model : model.toBytes(), target);
  try {
    return (await evaluateAccuracy(session, dataset)).accuracy;
  } finally {
    await session.release();
  }
}
