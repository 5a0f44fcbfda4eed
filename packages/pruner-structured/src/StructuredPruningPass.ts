import path from 'node:path';
import {
  ConfigError,
  type JsonValue,
  type ModelArtifact,
  type ModelCost,
  type Pass,
  type PassContext,
  type PassResult,
  type SearchSpace,
  type TrialParams,
} from '@open-autoglm/core';
import { OnnxModel } from '@open-autoglm/onnx';
import { arraysOf } from '@open-autoglm/runtime';
import type { ParameterGradients } from './computeImportance.js';
import { measureInputMeans } from './compensateBias.js';
import { computeParameterGradients } from './computeParameterGradients.js';
import { canShrink } from './planPruning.js';
import type { PrunerOptions } from './prunerOptions.js';
import { modelFeeds, recalibrateBatchNorm } from './recalibrateBatchNorm.js';
import { type ReconstructionReport, reconstructConsumers, reconstructionJson } from './reconstructConsumers.js';
import { StructuredPruner, type StructuredPruningOptions, type StructuredPruningReport } from './StructuredPruner.js';

/** Prefix of the per-group parameters: `ratio./layer1/conv1/Conv`. */
export const RATIO_PREFIX = 'ratio.';
/** The single parameter when `perLayer` is false. */
export const GLOBAL_RATIO = 'ratio';

const CALIBRATION_BATCH = 64;

/** The pruner as a pipeline pass: one ratio per prunable group (or one global ratio). */
export class StructuredPruningPass implements Pass {
  // Analyses by the artifact's bytes: strategies call predictCost hundreds of times per model.
  private readonly pruners = new WeakMap<Uint8Array, StructuredPruner>();
  private readonly gradients = new WeakMap<StructuredPruner, ParameterGradients>();

  constructor(private readonly options: PrunerOptions) {}

  private prunerFor(model: ModelArtifact): StructuredPruner {
    let pruner = this.pruners.get(model.bytes);
    if (pruner === undefined) {
      pruner = new StructuredPruner(OnnxModel.fromBytes(model.bytes, { source: model.path }));
      this.pruners.set(model.bytes, pruner);
    }
    return pruner;
  }

  async searchSpace(model: ModelArtifact): Promise<SearchSpace> {
    const pruner = this.prunerFor(model);
    const { min, max, step } = this.options.ratio;
    const distribution = { kind: 'float' as const, low: min, high: max, step };
    if (!this.options.perLayer) {
      return [{ name: GLOBAL_RATIO, distribution, description: `fraction of channels removed, ranked globally by ${this.options.criterion} importance` }];
    }
    const groups = pruner.prunableGroups(this.options.protect).filter((group) => canShrink(group, this.options.roundTo, this.options.minUnits));
    return groups.map((group) => ({
      name: `${RATIO_PREFIX}${group.name}`,
      distribution,
      layer: group.layers[0] as string,
      features: group.features,
      description: `fraction of the ${group.units} ${group.kind} of ${group.layers.join(', ')} removed`,
    }));
  }

  /** The pruning options a trial's parameters stand for (ConfigError for unknown names). */
  private ratiosFor(params: TrialParams): StructuredPruningOptions {
    const perLayer: Record<string, number> = {};
    let ratio: number | undefined;
    for (const [name, value] of Object.entries(params)) {
      if (typeof value !== 'number') throw new ConfigError(`Parameter "${name}" of pruner-structured must be a number (a ratio in [0, 1)), got ${JSON.stringify(value)}.`);
      if (name === GLOBAL_RATIO) ratio = value;
      else if (name.startsWith(RATIO_PREFIX)) perLayer[name.slice(RATIO_PREFIX.length)] = value;
      else throw new ConfigError(`pruner-structured has no parameter "${name}"; its parameters are "${GLOBAL_RATIO}" and "${RATIO_PREFIX}<group>".`);
    }
    return {
      ...(ratio === undefined ? {} : { ratio }),
      perLayer,
      criterion: this.options.criterion,
      roundTo: this.options.roundTo,
      minUnits: this.options.minUnits,
      protect: this.options.protect,
    };
  }

  async predictCost(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<ModelCost> {
    const pruner = this.prunerFor(model);
    const options = { ...this.ratiosFor(params), seed: context.seed };
    // Only a global ranking makes the counts depend on importance (and Taylor on gradients).
    const needsGradients = options.criterion === 'taylor' && options.ratio !== undefined && options.ratio > 0;
    const gradients = needsGradients ? await this.gradientsFor(pruner, context) : undefined;
    return pruner.predict({ ...options, ...(gradients === undefined ? {} : { gradients }) });
  }

  async apply(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<PassResult> {
    const pruner = this.prunerFor(model);
    const options = { ...this.ratiosFor(params), seed: context.seed };
    const gradients = options.criterion === 'taylor' ? await this.gradientsFor(pruner, context) : undefined;
    const calib = context.datasets.calib;
    let inputMeans: ReadonlyMap<string, Float64Array> | undefined;
    if (this.options.biasCorrection && calib !== undefined) {
      const withGradients = { ...options, ...(gradients === undefined ? {} : { gradients }) };
      const inputNames = pruner.model.graph.inputs.map((i) => i.name);
      const feeds = modelFeeds(await arraysOf(calib), inputNames, CALIBRATION_BATCH, this.options.calibrationSamples);
      inputMeans = await measureInputMeans(pruner.model, pruner.biasCompensationTargets(withGradients), feeds);
    }
    const result = pruner.prune({ ...options, ...(gradients === undefined ? {} : { gradients }), ...(inputMeans === undefined ? {} : { inputMeans }) });
    let reconstruction: ReconstructionReport | undefined;
    if (this.options.reconstruct) {
      if (calib === undefined) {
        throw new ConfigError('The reconstruct option of pruner-structured refits layers on calibration data: add data.calib to the config, or set reconstruct: false.');
      }
      const feeds = Array.from(modelFeeds(await arraysOf(calib), result.model.graph.inputs.map((i) => i.name), CALIBRATION_BATCH, this.options.calibrationSamples));
      reconstruction = await reconstructConsumers(pruner.model, result.model, pruner.analysis, result.plan, feeds, { seed: context.seed });
      context.logger.info(`pruner-structured: refitted ${reconstruction.layers.length} layer(s) by least squares (${reconstruction.skipped.length} skipped)`);
    }
    let recalibrated: string[] = [];
    if (this.options.recalibrate && !this.options.reconstruct && calib !== undefined) {
      const inputNames = result.model.graph.inputs.map((i) => i.name);
      const feeds = modelFeeds(await arraysOf(calib), inputNames, CALIBRATION_BATCH, this.options.calibrationSamples);
      const recalibration = await recalibrateBatchNorm(result.model, feeds);
      recalibrated = [...recalibration.layers];
      if (recalibrated.length > 0) context.logger.info(`pruner-structured: re-estimated ${recalibrated.length} BatchNorm layer(s) on ${recalibration.samples} calibration samples`);
    }
    const output = path.join(context.workDir, 'pruned.onnx');
    return { model: { path: output, bytes: result.model.toBytes() }, report: { ...reportJson(result.report, recalibrated), ...(reconstruction === undefined ? {} : reconstructionJson(reconstruction)) } };
  }

  private async gradientsFor(pruner: StructuredPruner, context: PassContext): Promise<ParameterGradients> {
    const cached = this.gradients.get(pruner);
    if (cached !== undefined) return cached;
    const calib = context.datasets.calib;
    if (calib === undefined) {
      throw new ConfigError(
        'The taylor criterion of pruner-structured needs labelled calibration data: add data.calib with x and y to the config, or choose l1, l2, fpgm, bn or random.',
      );
    }
    const gradients = await computeParameterGradients(pruner.model, pruner.taylorParameters(), await arraysOf(calib), {
      batchSize: CALIBRATION_BATCH,
      samples: this.options.calibrationSamples,
    });
    this.gradients.set(pruner, gradients);
    return gradients;
  }
}

/** The pass report as JSON: totals, predicted vs actual, and the per-group table. */
export function reportJson(report: StructuredPruningReport, recalibrated: readonly string[]): Record<string, JsonValue> {
  return {
    criterion: report.criterion,
    compensatedBiases: report.compensatedBiases,
    original: { ...report.original },
    predicted: { ...report.predicted },
    actual: { ...report.actual },
    prunedUnits: report.groups.reduce((sum, g) => sum + (g.unitsBefore - g.unitsAfter), 0),
    recalibratedBatchNorms: [...recalibrated],
    groups: report.groups.map((g) => ({
      group: g.group,
      kind: g.kind,
      layers: [...g.layers],
      before: g.unitsBefore,
      after: g.unitsAfter,
      unitSize: g.unitSize,
      importanceKept: g.importanceKept ?? null,
      importanceRemoved: g.importanceRemoved ?? null,
      frozen: g.frozen,
      reasons: [...g.reasons],
    })),
  };
}
