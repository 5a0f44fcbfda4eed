import { ConfigError, DatasetError } from '@open-autoglm/core';
import type { OnnxModel } from '@open-autoglm/onnx';
import {
  addMinMaxOutputs,
  createSession,
  type Dataset,
  DEFAULT_RUNTIME_TARGET,
  inferBatches,
  type RuntimeTarget,
  streamActivations,
  type TensorMap,
} from '@open-autoglm/runtime';
import type { ActivationType, TensorRange } from '../quantizationParameters.js';
import { entropyThreshold, mseRange, percentileThreshold } from './chooseRange.js';
import { Histogram } from './Histogram.js';

export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy', 'mse'] as const;
/** How the quantization range of an activation is chosen from what calibration observed. */
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export interface CalibrationOptions {
  /** Default `minmax`. */
  method?: CalibrationMethod;
  /**
   * MinMax only: exponential moving average of the per-batch min and max with this constant
   * (ORT uses 0.01) instead of the global extremes, which one outlier batch would stretch.
   */
  movingAverage?: number;
  /** Percentile method: share of |x| kept unclipped, in percent; default 99.999. */
  percentile?: number;
  /** Histogram bins for percentile, entropy and mse; default 2048. */
  bins?: number;
  /** Activation type the ranges are chosen for (entropy and mse depend on it); default uint8. */
  activationType?: ActivationType;
  /** Samples per inference run; default 32. Memory is one batch of the observed tensors. */
  batchSize?: number;
  /** Where calibration runs; default cpu, 1 thread. */
  target?: RuntimeTarget;
  signal?: AbortSignal;
}

/** What calibration found for one tensor. */
export interface CalibratedRange extends TensorRange {
  /** The extremes actually seen (min, max are the chosen, possibly clipped, range). */
  readonly observed: TensorRange;
}

/**
 * Quantization ranges of `tensorNames` over a calibration dataset, streaming with bounded memory:
 * a first pass reduces min and max inside the graph (two scalars per tensor and batch); the
 * histogram methods then stream one batch at a time into fixed-size histograms over the observed
 * interval. Nothing kept grows with the number of samples.
 */
export async function calibrateRanges(
  model: OnnxModel,
  tensorNames: readonly string[],
  dataset: Dataset,
  options: CalibrationOptions = {},
): Promise<Map<string, CalibratedRange>> {
  const method = options.method ?? 'minmax';
  if (!(CALIBRATION_METHODS as readonly string[]).includes(method)) {
    throw new ConfigError(`Unknown calibration method "${String(method)}". Use one of: ${CALIBRATION_METHODS.join(', ')}.`);
  }
  const percentile = options.percentile ?? 99.999;
  if (!(percentile > 0 && percentile <= 100)) throw new ConfigError(`percentile must be in (0, 100], got ${percentile}.`);
  const bins = options.bins ?? 2048;
  if (!Number.isInteger(bins) || bins < 16) throw new ConfigError(`bins must be a whole number >= 16, got ${bins}.`);
  const movingAverage = options.movingAverage;
  if (movingAverage !== undefined && !(movingAverage > 0 && movingAverage <= 1)) {
    throw new ConfigError(`movingAverage must be in (0, 1], got ${movingAverage}.`);
  }
  dataset.requireSamples('calibrate the quantization ranges');
  rejectNonFiniteSamples(dataset);
  const observed = await observeMinMax(model, tensorNames, dataset, options);
  const type = options.activationType ?? 'uint8';
  const ranges = new Map<string, CalibratedRange>();
  if (method === 'minmax') {
    for (const [name, range] of observed) ranges.set(name, { ...range, observed: range });
    return ranges;
  }
  const histograms = new Map<string, Histogram>();
  for (const [name, range] of observed) {
    histograms.set(
      name,
      method === 'mse'
        ? new Histogram(range.min, range.max, bins)
        : new Histogram(0, Math.max(Math.abs(range.min), Math.abs(range.max)), bins),
    );
  }
  for await (const batch of streamActivations(model, tensorNames, dataset, {
    batch: options.batchSize ?? 32,
    target: options.target ?? DEFAULT_RUNTIME_TARGET,
  })) {
    options.signal?.throwIfAborted();
    for (const [name, histogram] of histograms) histogram.add(floatData(batch.tensors[name], name), method !== 'mse');
  }
  for (const [name, range] of observed) {
    const histogram = histograms.get(name) as Histogram;
    if (method === 'mse') {
      ranges.set(name, { ...mseRange(histogram, range, type), observed: range });
      continue;
    }
    // Unsigned tensors (ReLU outputs) use all 256 uint8 levels on [0, T]; signed ones half of them.
    // Their spike of exact zeros is represented exactly (zero point 0), so it is left out of the
    // KL comparison, where it would dominate (measured on resnet8: 82.5 % with it, 87.3 % without).
    const unsigned = range.min >= 0;
    const levels = unsigned && type === 'uint8' ? 256 : 128;
    const threshold = method === 'percentile' ? percentileThreshold(histogram, percentile) : entropyThreshold(histogram, levels, unsigned);
    ranges.set(name, { min: Math.max(range.min, -threshold), max: Math.min(range.max, threshold), observed: range });
  }
  return ranges;
}

/** Per-tensor min and max (global, or as a moving average of per-batch values), reduced in-graph. */
async function observeMinMax(
  model: OnnxModel,
  tensorNames: readonly string[],
  dataset: Dataset,
  options: CalibrationOptions,
): Promise<Map<string, TensorRange>> {
  const augmented = addMinMaxOutputs(model, tensorNames);
  const outputNames = [...augmented.outputs.values()].flatMap((o) => [o.min, o.max, o.nonFiniteCheck]);
  const session = await createSession(augmented.model.toBytes(), options.target ?? DEFAULT_RUNTIME_TARGET, {
    file: model.source,
  });
  const running = new Map<string, { min: number; max: number }>();
  try {
    for await (const part of inferBatches(session, dataset, { batch: options.batchSize ?? 32, outputNames })) {
      options.signal?.throwIfAborted();
      for (const [name, outputs] of augmented.outputs) {
        const samples = { start: part.start, size: part.size };
        scalar(part.outputs[outputs.nonFiniteCheck], name, model, samples); // NaN that ReduceMin/Max skipped
        const min = scalar(part.outputs[outputs.min], name, model, samples);
        const max = scalar(part.outputs[outputs.max], name, model, samples);
        const current = running.get(name);
        if (current === undefined) running.set(name, { min, max });
        else if (options.movingAverage === undefined) {
          current.min = Math.min(current.min, min);
          current.max = Math.max(current.max, max);
        } else {
          current.min += options.movingAverage * (min - current.min);
          current.max += options.movingAverage * (max - current.max);
        }
      }
    }
  } finally {
    await session.release();
  }
  return running;
}

type Tensor = TensorMap[string];

/**
 * DatasetError naming the first sample holding NaN or Inf. onnxruntime's ReduceMin/ReduceMax
 * skip NaN, so without this check a NaN in the data would calibrate silently.
 */
function rejectNonFiniteSamples(dataset: Dataset): void {
  for (const [name, array] of dataset.features) {
    if (!(array.data instanceof Float32Array || array.data instanceof Float64Array)) continue;
    const rowSize = array.shape.slice(1).reduce((a, b) => a * b, 1);
    const index = array.data.findIndex((v) => !Number.isFinite(v));
    if (index < 0) continue;
    throw new DatasetError(
      `Calibration input "${name}"${array.file === undefined ? '' : ` (${array.file})`} holds ${array.data[index]} in sample ` +
        `${Math.floor(index / rowSize)}: ranges cannot be calibrated on NaN or Inf. Clean the data (drop or fix those samples).`,
      { file: array.file },
    );
  }
}

function scalar(tensor: Tensor | undefined, name: string, model: OnnxModel, samples: { start: number; size: number }): number {
  const value = Number(tensor?.data[0]);
  if (!Number.isFinite(value)) {
    throw new DatasetError(
      `Calibration saw a non-finite value (NaN or Inf) in tensor "${name}" of model ${model.source ?? '(in memory)'} ` +
        `on calibration samples ${samples.start}-${samples.start + samples.size - 1}. The data is finite (checked before), so the ` +
        'model computes it (e.g. Log or Sqrt of a negative value, or values out of float range): check those samples and the model.',
      { file: model.source },
    );
  }
  return value;
}

function floatData(tensor: Tensor | undefined, name: string): Float32Array {
  if (tensor === undefined || !(tensor.data instanceof Float32Array)) {
    throw new ConfigError(`Tensor "${name}" is not a float32 activation (type ${tensor?.type ?? 'missing'}); only float tensors are calibrated.`);
  }
  return tensor.data;
}
