import path from 'node:path';
import {
  ConfigError,
  type Dataset as SplitData,
  type LayerFeatures,
  type ModelArtifact,
  type ParameterDescriptor,
  type Pass,
  type PassContext,
  type PassResult,
  type SearchSpace,
  type TrialParams,
} from '@open-autoglm/core';
import { countModelStats, getIntsAttribute, type NodeProto, OnnxModel, tensorDims } from '@open-autoglm/onnx';
import { type Dataset, loadDataset } from '@open-autoglm/runtime';
import type { CalibrationMethod } from './calibration/calibrateRanges.js';
import { COMPUTE_OPS, planStaticQuantization } from './planStaticQuantization.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import { quantizeDynamic } from './quantizeDynamic.js';
import type { QuantizerOptions } from './quantizerOptions.js';
import { quantizeStatic } from './quantizeStatic.js';

/** Prefix of the per-layer parameters: `int8.<node name>` = 'int8' | 'float'. */
export const LAYER_PARAMETER_PREFIX = 'int8.';

/**
 * INT8 quantization as a pipeline pass. The search space offers the calibration method (when
 * several are configured) and, with `perLayer`, an int8/float choice per quantizable layer with
 * the layer's features; `apply` quantizes with the `calib` split (static) or without data
 * (dynamic).
 */
export class Int8QuantizationPass implements Pass {
  constructor(private readonly options: QuantizerOptions) {}

  async searchSpace(model: ModelArtifact): Promise<SearchSpace> {
    const space: ParameterDescriptor[] = [];
    const methods = this.methods();
    if (methods.length > 1 && this.options.mode === 'static') {
      space.push({ name: 'calibration', distribution: { kind: 'categorical', choices: [...methods] }, description: 'calibration method' });
    }
    if (!this.options.perLayer) return space;
    const { model: analysed, layers } = this.layersOf(OnnxModel.fromBytes(model.bytes, { source: model.path }));
    const stats = new Map(countModelStats(analysed.proto).perNode.map((s) => [s.node, s]));
    layers.forEach((node, index) => {
      const s = stats.get(node.name);
      space.push({
        name: `${LAYER_PARAMETER_PREFIX}${node.name}`,
        distribution: { kind: 'categorical', choices: ['int8', 'float'] },
        layer: node.name,
        features: layerFeatures(node, index, analysed, s?.macs ?? 0, s?.params ?? 0),
        description: `precision of ${node.opType} "${node.name}"`,
      });
    });
    return space;
  }

  async apply(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<PassResult> {
    const onnx = OnnxModel.fromBytes(model.bytes, { source: model.path });
    const floatLayers = Object.entries(params)
      .filter(([name, value]) => name.startsWith(LAYER_PARAMETER_PREFIX) && value === 'float')
      .map(([name]) => name.slice(LAYER_PARAMETER_PREFIX.length));
    const exclude = [...this.options.exclude, ...floatLayers];
    const output = path.join(context.workDir, 'quantized.onnx');
    if (this.options.mode === 'dynamic') {
      const result = quantizeDynamic(onnx, { perChannel: this.options.perChannel, exclude });
      await result.model.save(output);
      return {
        model: { path: output, bytes: result.model.toBytes() },
        report: { mode: 'dynamic', quantizedLayers: result.quantizedNodes.length, floatLayers: result.floatNodes.map((n) => n.node) },
      };
    }
    const method = this.methodFor(params);
    const calibration = await this.calibrationData(context);
    const result = await quantizeStatic(onnx, calibration, {
      method,
      perChannel: this.options.perChannel,
      activationType: this.options.activationType,
      exclude,
      floatSingleChannelConv: !this.options.perLayer,
      percentile: this.options.percentile,
      ...(this.options.movingAverage === undefined ? {} : { movingAverage: this.options.movingAverage }),
      ...(context.signal === undefined ? {} : { signal: context.signal }),
    });
    await result.model.save(output);
    context.logger.info(`quantizer-int8: ${result.quantizedNodes.length} nodes in INT8 (${method} calibration)`);
    return {
      model: { path: output, bytes: result.model.toBytes() },
      report: {
        mode: 'static',
        calibration: method,
        quantizedNodes: result.quantizedNodes.length,
        floatLayers: result.floatNodes.map((n) => n.node),
      },
    };
  }

  private methods(): readonly CalibrationMethod[] {
    const c = this.options.calibration;
    return typeof c === 'string' ? [c] : c;
  }

  private methodFor(params: TrialParams): CalibrationMethod {
    const methods = this.methods();
    if (methods.length === 1) return methods[0] as CalibrationMethod;
    const chosen = params.calibration;
    if (typeof chosen !== 'string' || !(methods as readonly string[]).includes(chosen)) {
      throw new ConfigError(
        `quantizer-int8 needs one of ${methods.join(', ')} for its searched parameter "calibration", got ${JSON.stringify(chosen) ?? 'none'}.`,
      );
    }
    return chosen as CalibrationMethod;
  }

  /**
   * The quantizable layers (compute nodes with an integer kernel) in topological order, in the
   * model as the quantizer sees it (BatchNorm folded, every node named: the names `apply` uses).
   */
  private layersOf(model: OnnxModel): { model: OnnxModel; layers: NodeProto[] } {
    const prepared = prepareForQuantization(model);
    if (this.options.mode === 'dynamic') {
      const names = new Set(quantizeDynamic(model, { exclude: this.options.exclude }).quantizedNodes);
      return { model: prepared, layers: prepared.graph.topologicalOrder().filter((n) => names.has(n.name)) };
    }
    // The search decides every layer's precision, the one-input-channel Conv's too.
    const plan = planStaticQuantization(prepared, { exclude: this.options.exclude, floatSingleChannelConv: false });
    return { model: prepared, layers: prepared.graph.topologicalOrder().filter((n) => plan.nodes.has(n) && COMPUTE_OPS.has(n.opType)) };
  }

  private async calibrationData(context: PassContext): Promise<Dataset> {
    const split: SplitData | undefined = context.datasets.calib ?? context.datasets.train;
    if (split === undefined) {
      throw new ConfigError(
        'quantizer-int8 (static) calibrates on the data.calib split (or data.train), but the config names neither. ' +
          'Add data.calib: { x: <calibration inputs .npy> }, or use mode: dynamic.',
      );
    }
    const dataset = await loadDataset({ x: split.source.x });
    return this.options.calibrationSamples === undefined ? dataset : dataset.slice(0, this.options.calibrationSamples);
  }
}

/** The agreed per-layer features (see `LayerFeatures`) of a Conv, Gemm or MatMul. */
function layerFeatures(node: NodeProto, index: number, model: OnnxModel, macs: number, params: number): LayerFeatures {
  const weight = model.graph.constantValue(node.input[1] ?? '');
  const dims = weight === undefined ? [] : tensorDims(weight);
  let inChannels = 0;
  let outChannels = 0;
  let kernel = 1;
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
    const group = Number(node.attribute.find((a) => a.name === 'group')?.i ?? 1n);
    outChannels = node.opType === 'Conv' ? (dims[0] ?? 0) : (dims[1] ?? 0) * group;
    inChannels = node.opType === 'Conv' ? (dims[1] ?? 0) * group : (dims[0] ?? 0);
    kernel = dims.slice(2).reduce((a, b) => a * b, 1);
  } else if (dims.length === 2) {
    const transposed = node.opType === 'Gemm' && node.attribute.some((a) => a.name === 'transB' && a.i === 1n);
    [inChannels, outChannels] = transposed ? [dims[1] as number, dims[0] as number] : [dims[0] as number, dims[1] as number];
  }
  const stride = getIntsAttribute(node, 'strides', [1])[0] ?? 1;
  return { index, opType: node.opType, inChannels, outChannels, kernel, stride, macs, params };
}
