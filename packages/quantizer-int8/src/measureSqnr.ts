import type { OnnxModel } from '@open-autoglm/onnx';
import {
  createSession,
  type Dataset,
  exposeTensors,
  inferBatches,
  type RuntimeSession,
  type RuntimeTarget,
  type TensorMap,
} from '@open-autoglm/runtime';

/** A tensor of the float model and the tensor of the quantized model that approximates it. */
export interface TensorPair {
  readonly reference: string;
  readonly quantized: string;
}

/**
 * Signal-to-quantization-noise ratio in dB of each pair, 10 log10(sum x^2 / sum (x - x_q)^2),
 * accumulated over the dataset one batch at a time. The quantized model runs with graph
 * optimizations disabled (QDQ as float simulation), so its intermediate tensors exist and every
 * Q/DQ pair is applied exactly. A pair without error gets Infinity.
 */
export async function measureSqnr(
  reference: OnnxModel,
  quantized: OnnxModel,
  pairs: readonly TensorPair[],
  dataset: Dataset,
  options: { batch?: number; target?: RuntimeTarget } = {},
): Promise<Map<string, number>> {
  const target = options.target ?? { device: 'cpu', threads: 1 };
  const batch = options.batch ?? 64;
  const sessions: RuntimeSession[] = [];
  const signal = new Float64Array(pairs.length);
  const noise = new Float64Array(pairs.length);
  try {
    const referenceSession = await createSession(exposeTensors(reference, pairs.map((p) => p.reference)).toBytes(), target);
    sessions.push(referenceSession);
    const quantizedSession = await createSession(exposeTensors(quantized, pairs.map((p) => p.quantized)).toBytes(), {
      ...target,
      optimizationLevel: 'disabled',
    });
    sessions.push(quantizedSession);
    const referenceBatches = inferBatches(referenceSession, dataset, { batch, outputNames: pairs.map((p) => p.reference) });
    const quantizedBatches = inferBatches(quantizedSession, dataset, { batch, outputNames: pairs.map((p) => p.quantized) });
    for (;;) {
      const [r, q] = await Promise.all([referenceBatches.next(), quantizedBatches.next()]);
      if (r.done === true || q.done === true) break;
      pairs.forEach((pair, i) => {
        const x = floatData(r.value.outputs, pair.reference);
        const y = floatData(q.value.outputs, pair.quantized);
        let s = 0;
        let n = 0;
        for (let k = 0; k < x.length; k++) {
          const v = x[k] as number;
          const d = v - (y[k] as number);
          s += v * v;
          n += d * d;
        }
        signal[i] = (signal[i] as number) + s;
        noise[i] = (noise[i] as number) + n;
      });
    }
  } finally {
    for (const session of sessions) await session.release();
  }
  return new Map(
    pairs.map((pair, i) => [pair.reference, noise[i] === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((signal[i] as number) / (noise[i] as number))]),
  );
}

function floatData(outputs: TensorMap, name: string): Float32Array {
  return outputs[name]?.data as Float32Array;
}
