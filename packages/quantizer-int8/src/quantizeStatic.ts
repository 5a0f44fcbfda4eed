import type { OnnxModel } from '@open-autoglm/onnx';
import type { Dataset } from '@open-autoglm/runtime';
import { type CalibratedRange, type CalibrationOptions, calibrateRanges } from './calibration/calibrateRanges.js';
import { checkQuantizable } from './checkQuantizable.js';
import { insertQdq, type QuantizedActivation, type QuantizedWeight } from './insertQdq.js';
import { type FloatNode, planStaticQuantization } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import type { ActivationType } from './quantizationParameters.js';

export interface StaticQuantizationOptions extends Omit<CalibrationOptions, 'activationType'> {
  /** Activation type; default uint8 (ORT's x86 kernels are U8S8; int8 is rewritten to it anyway). */
  activationType?: ActivationType;
  /** Per-channel weight scales for Conv and Gemm; default true. */
  perChannel?: boolean;
  /** Op types (`Add`) or node names to keep in float. */
  exclude?: readonly string[];
  /** Keep a one-input-channel Conv float (see `PlanOptions.floatSingleChannelConv`); default true. */
  floatSingleChannelConv?: boolean;
  /**
   * Ranges calibrated before (e.g. `result.ranges` of an earlier run on the same model): tensors
   * found here are not calibrated again, so variants of one model (mixed precision) cost no
   * extra calibration.
   */
  ranges?: ReadonlyMap<string, CalibratedRange>;
}

export interface StaticQuantizationResult {
  /** The QDQ model (a new object; the input is not modified). */
  readonly model: OnnxModel;
  /** Names of the nodes that run in INT8. */
  readonly quantizedNodes: readonly string[];
  /** Nodes of quantizable op types kept in float, with the reason. */
  readonly floatNodes: readonly FloatNode[];
  readonly activations: readonly QuantizedActivation[];
  readonly weights: readonly QuantizedWeight[];
  /** Calibrated range of each activation that has its own parameters. */
  readonly ranges: ReadonlyMap<string, CalibratedRange>;
}

/**
 * Static post-training INT8 quantization in QDQ form: BatchNorm folded, weights int8 symmetric
 * (per channel by default), biases int32 with scale s_input * s_weight, activations calibrated on
 * `calibration` and quantized asymmetrically. The result runs as fused integer kernels
 * (QLinearConv, QGemm, QLinearAdd, ...) in onnxruntime at optimization level `extended` or
 * `all`, and as float simulation with optimizations disabled.
 */
export async function quantizeStatic(
  model: OnnxModel,
  calibration: Dataset,
  options: StaticQuantizationOptions = {},
): Promise<StaticQuantizationResult> {
  checkQuantizable(model);
  const activationType = options.activationType ?? 'uint8';
  const prepared = prepareForQuantization(model);
  const plan = planStaticQuantization(prepared, {
    exclude: options.exclude,
    perChannel: options.perChannel,
    floatSingleChannelConv: options.floatSingleChannelConv,
  });
  const needed = [...new Set(plan.tensors.map((t) => plan.sharedParameters.get(t) ?? t))];
  const ranges = new Map<string, CalibratedRange>();
  for (const name of needed) {
    const known = options.ranges?.get(name);
    if (known !== undefined) ranges.set(name, known);
  }
  const missing = needed.filter((name) => !ranges.has(name));
  if (missing.length > 0) {
    for (const [name, range] of await calibrateRanges(prepared, missing, calibration, { ...options, activationType })) {
      ranges.set(name, range);
    }
  }
  const quantizedNodes = [...plan.nodes].map((node) => node.name);
  const insertion = insertQdq(prepared, plan, ranges, activationType);
  return { model: prepared, quantizedNodes, floatNodes: plan.floatNodes, ...insertion, ranges };
}
