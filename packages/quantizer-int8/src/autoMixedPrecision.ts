import { ConfigError } from '@open-autoglm/core';
import type { OnnxModel } from '@open-autoglm/onnx';
import { type Dataset, modelAccuracy, type RuntimeTarget } from '@open-autoglm/runtime';
import { compareLatency } from './compareLatency.js';
import { measureSqnr } from './measureSqnr.js';
import { COMPUTE_OPS } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import { quantizeStatic, type StaticQuantizationOptions, type StaticQuantizationResult } from './quantizeStatic.js';

export interface MixedPrecisionOptions extends StaticQuantizationOptions {
  /** Largest accepted top-1 accuracy drop against the input model, as a fraction (0.005 = 0.5 point). */
  maxDrop: number;
  /** Batch size latency is decided at; default 1. */
  latencyBatch?: number;
  /** Where latency is measured; default cpu, 1 thread. */
  latencyTarget?: RuntimeTarget;
  /** Validation samples used for the per-tensor SQNR; default 256. */
  sqnrSamples?: number;
  /**
   * A layer stays float when the model with it in INT8 is not at least this much faster than
   * with it in float (ratio); default 1 (not slower). Single layers of small models gain a few
   * percent, within the noise of a shared machine, so a higher bar drops useful layers.
   */
  minLayerSpeedup?: number;
  /** Progress lines. */
  onProgress?: (message: string) => void;
}

/** What the automatic mode decided for one layer, and the measurements behind it. */
export interface LayerDecision {
  readonly node: string;
  readonly opType: string;
  readonly precision: 'int8' | 'float';
  readonly reason: string;
  /** SQNR (dB) of the layer's output in the fully quantized model. */
  readonly sqnrDb: number | undefined;
  /** Accuracy drop (fraction) when only this layer is quantized. */
  readonly accuracyDropAlone: number;
  /** Model latency with this layer in float / with it in INT8 (above 1: INT8 faster), when measured. */
  readonly layerSpeedup: number | undefined;
}

export interface ModelMeasurement {
  readonly accuracy: number;
  readonly latencyMs: number;
}

export interface MixedPrecisionResult {
  /** The chosen model: QDQ with some layers float, or the input itself when nothing paid off. */
  readonly model: OnnxModel;
  readonly layers: readonly LayerDecision[];
  readonly input: ModelMeasurement;
  readonly fullInt8: ModelMeasurement;
  readonly chosen: ModelMeasurement;
  /** Why the chosen model is what it is, in one sentence. */
  readonly summary: string;
  /** The static quantization of the chosen model, or undefined when the input is returned. */
  readonly quantization: StaticQuantizationResult | undefined;
  readonly fullQuantization: StaticQuantizationResult;
}

/**
 * Accuracy- and latency-aware mixed precision. Measures each layer's sensitivity (SQNR of its
 * output in the fully quantized model, accuracy drop when it alone is quantized), keeps layers
 * in float while the accuracy drop exceeds `maxDrop` (most sensitive first), then keeps in float
 * every layer whose INT8 form does not make the model faster on the target (measured side by
 * side), and finally returns the input model unchanged when the mixed model is not faster than
 * it. The result never loses more than `maxDrop` on `validation` nor runs slower than the input
 * as measured here.
 */
export async function autoMixedPrecision(
  model: OnnxModel,
  calibration: Dataset,
  validation: Dataset,
  options: MixedPrecisionOptions,
): Promise<MixedPrecisionResult> {
  if (!(options.maxDrop >= 0 && options.maxDrop < 1)) {
    throw new ConfigError(`maxDrop must be a fraction in [0, 1) (0.005 = 0.5 point), got ${options.maxDrop}.`);
  }
  const progress = options.onProgress ?? ((): void => undefined);
  const latencyOptions = { batch: options.latencyBatch ?? 1, ...(options.latencyTarget === undefined ? {} : { target: options.latencyTarget }) };
  const minSpeedup = options.minLayerSpeedup ?? 1;
  const exclude = options.exclude ?? [];
  const inputBytes = model.toBytes();

  progress('quantizing every layer and calibrating');
  // Every layer is a candidate, measured here: no layer kept float by rule of thumb.
  const full = await quantizeStatic(model, calibration, { ...options, floatSingleChannelConv: false });
  const layerNodes = full.model.graph.nodes.filter((n) => full.quantizedNodes.includes(n.name) && COMPUTE_OPS.has(n.opType));
  const layers = layerNodes.map((n) => ({ node: n.name, opType: n.opType }));
  const build = (int8: ReadonlySet<string>): Promise<StaticQuantizationResult> =>
    quantizeStatic(model, calibration, {
      ...options,
      floatSingleChannelConv: false,
      ranges: full.ranges,
      exclude: [...exclude, ...layers.filter((l) => !int8.has(l.node)).map((l) => l.node)],
    });
  const accuracy = (bytes: Uint8Array): Promise<number> => modelAccuracy(bytes, validation);

  const inputAccuracy = await accuracy(inputBytes);
  const fullAccuracy = await accuracy(full.model.toBytes());
  progress(`accuracy: input ${(inputAccuracy * 100).toFixed(2)} %, all layers INT8 ${(fullAccuracy * 100).toFixed(2)} %`);

  // Sensitivity: SQNR of each layer's output, and the drop when the layer alone is INT8.
  const activationByTensor = new Map(full.activations.map((a) => [a.tensor, a]));
  const pairs = layerNodes.flatMap((n) => {
    const output = n.output[0] ?? '';
    // A graph output stays float and keeps its name; other outputs are read after their Q/DQ.
    const quantized = full.model.graph.isGraphOutput(output) ? output : activationByTensor.get(output)?.dequantized;
    return quantized === undefined ? [] : [{ reference: output, quantized, node: n.name }];
  });
  const sqnr =
    pairs.length === 0
      ? new Map<string, number>()
      : await measureSqnr(prepareForQuantization(model), full.model, pairs, validation.slice(0, options.sqnrSamples ?? 256));
  const sqnrOf = new Map(pairs.map((p) => [p.node, sqnr.get(p.reference)]));
  const dropAlone = new Map<string, number>();
  for (const layer of layers) {
    const alone = await build(new Set([layer.node]));
    dropAlone.set(layer.node, inputAccuracy - (await accuracy(alone.model.toBytes())));
  }
  progress('per-layer sensitivity measured');

  const reasons = new Map<string, string>();
  const int8 = new Set<string>();
  for (const layer of layers) {
    const drop = dropAlone.get(layer.node) as number;
    if (drop > options.maxDrop) reasons.set(layer.node, `alone it costs ${points(drop)} points, more than the budget of ${points(options.maxDrop)}`);
    else int8.add(layer.node);
  }
  // Accuracy budget: drop the most sensitive layers until the mixed model fits.
  let current = await build(int8);
  let currentAccuracy = await accuracy(current.model.toBytes());
  while (int8.size > 0 && inputAccuracy - currentAccuracy > options.maxDrop) {
    const worst = [...int8].sort((a, b) => (dropAlone.get(b) as number) - (dropAlone.get(a) as number) || (sqnrOf.get(a) ?? 0) - (sqnrOf.get(b) ?? 0))[0] as string;
    int8.delete(worst);
    reasons.set(worst, `kept float so that the model meets the accuracy budget (drop was ${points(inputAccuracy - currentAccuracy)} points with it)`);
    current = await build(int8);
    currentAccuracy = await accuracy(current.model.toBytes());
  }

  // Latency: a layer stays INT8 only when the model is faster with it.
  const layerSpeedup = new Map<string, number>();
  for (const layer of layers) {
    if (!int8.has(layer.node)) continue;
    const without = new Set(int8);
    without.delete(layer.node);
    const other = await build(without);
    const { aMs, bMs, speedup } = await compareLatency(other.model.toBytes(), current.model.toBytes(), latencyOptions);
    layerSpeedup.set(layer.node, speedup);
    if (speedup < minSpeedup) {
      const otherAccuracy = await accuracy(other.model.toBytes());
      if (inputAccuracy - otherAccuracy <= options.maxDrop) {
        int8.delete(layer.node);
        reasons.set(layer.node, `INT8 is not faster here: model ${bMs.toFixed(4)} ms with it in INT8, ${aMs.toFixed(4)} ms with it in float`);
        current = other;
        currentAccuracy = otherAccuracy;
      }
    }
  }
  progress('per-layer latency measured');

  const fullLatency = await compareLatency(inputBytes, full.model.toBytes(), latencyOptions);
  let chosenModel: OnnxModel = current.model;
  let quantization: StaticQuantizationResult | undefined = current;
  // The final check compares the input and the mixed model in one side-by-side measurement.
  const final = int8.size === 0 ? fullLatency : await compareLatency(inputBytes, current.model.toBytes(), latencyOptions);
  const inputLatency = final.aMs;
  let chosenLatency = int8.size === 0 ? inputLatency : final.bMs;
  let summary: string;
  if (int8.size === 0 || chosenLatency >= inputLatency) {
    const why =
      int8.size === 0
        ? 'no layer is both accurate enough and faster in INT8 on this target'
        : `the mixed model (${chosenLatency.toFixed(4)} ms) is not faster than the input (${inputLatency.toFixed(4)} ms) on this target`;
    for (const layer of layers) if (int8.has(layer.node)) reasons.set(layer.node, `kept float with the whole model: ${why}`);
    int8.clear();
    chosenModel = model.clone();
    quantization = undefined;
    chosenLatency = inputLatency;
    currentAccuracy = inputAccuracy;
    summary = `Returned the input model unchanged: ${why}.`;
  } else {
    summary =
      `${int8.size} of ${layers.length} layers in INT8: ${points(inputAccuracy - currentAccuracy)} points accuracy drop ` +
      `(budget ${points(options.maxDrop)}), ${(inputLatency / chosenLatency).toFixed(2)}x faster than the input at batch ${latencyOptions.batch}.`;
  }
  const decisions: LayerDecision[] = layers.map((layer) => ({
    ...layer,
    precision: int8.has(layer.node) ? 'int8' : 'float',
    reason: int8.has(layer.node) ? 'accurate enough and faster in INT8' : (reasons.get(layer.node) ?? 'kept float'),
    sqnrDb: sqnrOf.get(layer.node),
    accuracyDropAlone: dropAlone.get(layer.node) as number,
    layerSpeedup: layerSpeedup.get(layer.node),
  }));
  return {
    model: chosenModel,
    layers: decisions,
    input: { accuracy: inputAccuracy, latencyMs: inputLatency },
    fullInt8: { accuracy: fullAccuracy, latencyMs: fullLatency.bMs },
    chosen: { accuracy: currentAccuracy, latencyMs: chosenLatency },
    summary,
    quantization,
    fullQuantization: full,
  };
}

function points(fraction: number): string {
  return (fraction * 100).toFixed(2);
}
