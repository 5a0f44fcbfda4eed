import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type CommandInvocation, type CommandResult, ConfigError, FileAccessError, type JsonValue, type PluginCommand } from '@open-autoglm/core';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { type Dataset, loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { autoMixedPrecision, type MixedPrecisionResult } from './autoMixedPrecision.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from './calibration/calibrateRanges.js';
import { measureSqnr } from './measureSqnr.js';
import { prepareForQuantization } from './prepareForQuantization.js';
import type { ActivationType } from './quantizationParameters.js';
import { type DynamicQuantizationResult, quantizeDynamic } from './quantizeDynamic.js';
import { quantizeStatic, type StaticQuantizationResult } from './quantizeStatic.js';

/** `autoglm quantize`: static (calibrated QDQ), dynamic, or automatic mixed-precision INT8. */
export const quantizeCommand: PluginCommand = {
  name: 'quantize',
  summary: 'INT8 quantization: static (QDQ, calibrated), dynamic, mixed precision',
  arguments: [{ name: 'model', description: 'the float ONNX model (opset 13 or newer)' }],
  options: [
    { flags: '--calib <x.npy>', description: 'calibration inputs (.npy, or set.npz:x); needed unless --dynamic' },
    { flags: '--out <q.onnx>', description: 'where to write the quantized model', required: true },
    { flags: '--method <name>', description: `calibration: ${CALIBRATION_METHODS.join(', ')}`, defaultValue: 'minmax' },
    { flags: '--per-tensor', description: 'one scale per weight instead of one per output channel' },
    { flags: '--activation-type <type>', description: 'uint8 (fast U8S8 kernels on x86) or int8', defaultValue: 'uint8' },
    { flags: '--dynamic', description: 'dynamic quantization of MatMul/Gemm weights (transformers); no calibration data' },
    { flags: '--exclude <names...>', description: 'op types or node names to keep in float' },
    { flags: '--calib-samples <n>', description: 'calibrate on the first n samples only' },
    { flags: '--val <x.npy>', description: 'validation inputs: reports the accuracy of both models (with --labels)' },
    { flags: '--labels <y.npy>', description: 'validation labels (class ids)' },
    { flags: '--max-drop <fraction>', description: 'automatic mixed precision: largest accuracy drop (0.005 = 0.5 point); keeps layers float when they cost accuracy or are not faster' },
    { flags: '--batch <n>', description: 'batch size latency is decided at in automatic mode', defaultValue: '1' },
    { flags: '--threads <n>', description: 'onnxruntime threads for latency measurements', defaultValue: '1' },
    { flags: '--report <file.json>', description: 'write the debug report (per-tensor SQNR, scales, ranges, float layers and why)' },
  ],
  async run(invocation: CommandInvocation): Promise<CommandResult> {
    const { options, cwd, logger } = invocation;
    const file = (name: string): string | undefined => {
      const value = options[name];
      return typeof value === 'string' ? path.resolve(cwd, value) : undefined;
    };
    const modelFile = path.resolve(cwd, invocation.args[0] ?? '');
    const out = file('out');
    if (out === undefined) throw new ConfigError('autoglm quantize needs --out <q.onnx>.');
    if (out === modelFile) throw new ConfigError(`--out ${out} is the input model; write the quantized model to another file.`);
    const reportFile = file('report');
    if (reportFile !== undefined) await requireFolder(reportFile);
    await requireFolder(out);
    const method = choice(options.method, CALIBRATION_METHODS, '--method') as CalibrationMethod;
    const activationType = choice(options.activationType, ['uint8', 'int8'], '--activation-type') as ActivationType;
    const dynamic = options.dynamic === true;
    const exclude = Array.isArray(options.exclude) ? [...(options.exclude as readonly string[])] : [];
    const calibSamples = positiveInteger(options.calibSamples, '--calib-samples');
    const maxDrop = fraction(options.maxDrop, '--max-drop');
    const batch = positiveInteger(options.batch, '--batch') ?? 1;
    const threads = positiveInteger(options.threads, '--threads') ?? 1;
    const valFile = file('val');
    const labelsFile = file('labels');
    if ((valFile === undefined) !== (labelsFile === undefined)) {
      throw new ConfigError('Give both --val and --labels (accuracy needs labels), or neither.');
    }
    if (maxDrop !== undefined && valFile === undefined) {
      throw new ConfigError('--max-drop needs --val <x.npy> and --labels <y.npy>: the accuracy budget is checked on them.');
    }
    if (maxDrop !== undefined && dynamic) throw new ConfigError('--max-drop applies to static quantization; leave out --dynamic.');
    const calibFile = file('calib');
    if (!dynamic && calibFile === undefined) {
      throw new ConfigError('Static quantization needs --calib <x.npy> (a few hundred representative inputs), or use --dynamic.');
    }
    // OnnxModel.save only guards the model's own file; the report and the data files need this.
    const inputFiles = [modelFile, calibFile, valFile, labelsFile];
    for (const [flag, target] of [['--out', out], ['--report', reportFile]] as const) {
      if (target !== undefined && inputFiles.includes(target)) {
        throw new ConfigError(`${flag} ${target} is one of the input files; write it to another file.`);
      }
    }
    if (reportFile === out) throw new ConfigError(`--report and --out are both ${out}; give the report a file of its own.`);

    const model = await OnnxModel.load(modelFile);
    const validation = valFile === undefined ? undefined : await loadDataset({ x: valFile, y: labelsFile as string });
    let calibration: Dataset | undefined;
    if (calibFile !== undefined && !dynamic) {
      const all = await loadDataset({ x: calibFile });
      calibration = calibSamples === undefined ? all : all.slice(0, calibSamples);
    }

    let quantized: OnnxModel;
    let staticResult: StaticQuantizationResult | undefined;
    let dynamicResult: DynamicQuantizationResult | undefined;
    let auto: MixedPrecisionResult | undefined;
    const staticOptions = { method, activationType, perChannel: options.perTensor !== true, exclude };
    if (dynamic) {
      dynamicResult = quantizeDynamic(model, { perChannel: options.perTensor !== true, exclude });
      quantized = dynamicResult.model;
    } else if (maxDrop !== undefined) {
      auto = await autoMixedPrecision(model, calibration as Dataset, validation as Dataset, {
        ...staticOptions,
        maxDrop,
        latencyBatch: batch,
        latencyTarget: { device: 'cpu', threads },
        onProgress: (message) => logger.info(`quantize: ${message}`),
      });
      quantized = auto.model;
      staticResult = auto.quantization;
    } else {
      logger.info(`quantize: calibrating (${method}) on ${(calibration as Dataset).size} samples`);
      staticResult = await quantizeStatic(model, calibration as Dataset, staticOptions);
      quantized = staticResult.model;
    }

    let accuracy: { input: number; quantized: number; drop: number } | undefined;
    if (auto !== undefined) {
      accuracy = { input: auto.input.accuracy, quantized: auto.chosen.accuracy, drop: auto.input.accuracy - auto.chosen.accuracy };
    } else if (validation !== undefined) {
      const input = await modelAccuracy(model, validation);
      const after = await modelAccuracy(quantized, validation);
      accuracy = { input, quantized: after, drop: input - after };
    }
    const sqnr =
      staticResult === undefined
        ? new Map<string, number>()
        : await tensorSqnr(model, staticResult, (validation ?? (calibration as Dataset)).slice(0, 256));

    const report = buildReport({ modelFile, out, dynamic, method, activationType, perChannel: options.perTensor !== true, staticResult, dynamicResult, auto, accuracy, sqnr });
    await quantized.save(out);
    if (reportFile !== undefined) await writeFileAtomic(reportFile, new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`));
    return { summary: summarize(report, auto, out, reportFile), data: report };
  },
};

/** SQNR of every quantized activation (as its readers see it, after Q/DQ) against the float model. */
async function tensorSqnr(model: OnnxModel, result: StaticQuantizationResult, dataset: Dataset): Promise<Map<string, number>> {
  const reference = prepareForQuantization(model);
  const pairs = result.activations.flatMap((a) =>
    a.dequantized === undefined || (reference.graph.producerOf(a.tensor) === undefined && !reference.graph.isGraphInput(a.tensor))
      ? []
      : [{ reference: a.tensor, quantized: a.dequantized }],
  );
  return pairs.length === 0 ? new Map() : measureSqnr(reference, result.model, pairs, dataset);
}

interface ReportInput {
  modelFile: string;
  out: string;
  dynamic: boolean;
  method: CalibrationMethod;
  activationType: ActivationType;
  perChannel: boolean;
  staticResult: StaticQuantizationResult | undefined;
  dynamicResult: DynamicQuantizationResult | undefined;
  auto: MixedPrecisionResult | undefined;
  accuracy: { input: number; quantized: number; drop: number } | undefined;
  sqnr: ReadonlyMap<string, number>;
}

/** The debug report: what was quantized with which parameters, how well, and what stayed float and why. */
function buildReport(input: ReportInput): { [key: string]: JsonValue } {
  const { staticResult, dynamicResult, auto, sqnr } = input;
  const finite = (x: number | undefined): JsonValue => (x === undefined || !Number.isFinite(x) ? null : x);
  const tensors =
    staticResult?.activations.map((a) => {
      const range = staticResult.ranges.get(a.parametersOf);
      return {
        tensor: a.tensor,
        type: a.type,
        scale: a.scale,
        zeroPoint: a.zeroPoint,
        sharesParametersOf: a.parametersOf === a.tensor ? null : a.parametersOf,
        rangeMin: finite(range?.min),
        rangeMax: finite(range?.max),
        observedMin: finite(range?.observed.min),
        observedMax: finite(range?.observed.max),
        sqnrDb: finite(sqnr.get(a.tensor)),
      };
    }) ?? [];
  const worst = [...tensors]
    .filter((t) => typeof t.sqnrDb === 'number')
    .sort((a, b) => (a.sqnrDb as number) - (b.sqnrDb as number))
    .slice(0, 5)
    .map((t) => ({ tensor: t.tensor, sqnrDb: t.sqnrDb }));
  const floatNodes = auto
    ? auto.layers.filter((l) => l.precision === 'float').map((l) => ({ node: l.node, opType: l.opType, reason: l.reason }))
    : [...(staticResult?.floatNodes ?? dynamicResult?.floatNodes ?? [])].map((n) => ({ ...n }));
  return {
    input: input.modelFile,
    output: input.out,
    mode: input.dynamic ? 'dynamic' : auto ? 'auto' : 'static',
    calibration: input.dynamic ? null : input.method,
    activationType: input.dynamic ? 'uint8' : input.activationType,
    perChannel: input.perChannel,
    quantizedNodes: [...(staticResult?.quantizedNodes ?? dynamicResult?.quantizedNodes ?? [])],
    floatNodes,
    accuracy: input.accuracy === undefined ? null : { ...input.accuracy },
    tensors,
    weights:
      staticResult?.weights.map((w) => ({
        node: w.node,
        weight: w.weight,
        axis: w.axis ?? null,
        scaleMin: Math.min(...w.scales),
        scaleMax: Math.max(...w.scales),
        int32Bias: w.bias,
      })) ?? [],
    worstTensors: worst,
    auto: auto
      ? {
          summary: auto.summary,
          input: { ...auto.input },
          fullInt8: { ...auto.fullInt8 },
          chosen: { ...auto.chosen },
          layers: auto.layers.map((l) => ({
            node: l.node,
            opType: l.opType,
            precision: l.precision,
            reason: l.reason,
            sqnrDb: finite(l.sqnrDb),
            accuracyDropAlone: l.accuracyDropAlone,
            layerSpeedup: finite(l.layerSpeedup),
          })),
        }
      : null,
  };
}

function summarize(report: { [key: string]: JsonValue }, auto: MixedPrecisionResult | undefined, out: string, reportFile: string | undefined): string {
  const lines: string[] = [];
  const quantized = report.quantizedNodes as string[];
  lines.push(`Wrote ${out} (${report.mode as string} INT8, ${quantized.length} nodes quantized).`);
  const accuracy = report.accuracy as { input: number; quantized: number; drop: number } | null;
  if (accuracy !== null) {
    lines.push(`Accuracy: ${(accuracy.input * 100).toFixed(2)} % -> ${(accuracy.quantized * 100).toFixed(2)} % (drop ${(accuracy.drop * 100).toFixed(2)} points)`);
  }
  if (auto !== undefined) {
    lines.push(auto.summary);
    lines.push(table(['layer', 'op', 'precision', 'SQNR dB', 'drop alone', 'speedup', 'reason'], auto.layers.map((l) => [
      l.node,
      l.opType,
      l.precision,
      l.sqnrDb === undefined ? '-' : l.sqnrDb.toFixed(1),
      `${(l.accuracyDropAlone * 100).toFixed(2)}`,
      l.layerSpeedup === undefined ? '-' : `${l.layerSpeedup.toFixed(2)}x`,
      l.reason,
    ])));
  } else {
    const floats = report.floatNodes as Array<{ node: string; opType: string; reason: string }>;
    if (floats.length > 0) lines.push(table(['float node', 'op', 'reason'], floats.map((f) => [f.node, f.opType, f.reason])));
    const worst = report.worstTensors as Array<{ tensor: string; sqnrDb: number }>;
    if (worst.length > 0) lines.push(table(['worst tensor', 'SQNR dB'], worst.map((w) => [w.tensor, w.sqnrDb.toFixed(1)])));
  }
  if (reportFile !== undefined) lines.push(`Report: ${reportFile}`);
  return lines.join('\n');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function choice(value: unknown, allowed: readonly string[], flag: string): string {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new ConfigError(`${flag} must be one of ${allowed.join(', ')}, got "${String(value)}".`);
  }
  return value;
}

function positiveInteger(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(parsed) || parsed < 1) {
    throw new ConfigError(`${flag} must be a whole number >= 1, got "${String(value)}".`);
  }
  return parsed;
}

function fraction(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !(parsed >= 0 && parsed < 1)) {
    throw new ConfigError(`${flag} must be a fraction in [0, 1) such as 0.005 (half a point), got "${String(value)}".`);
  }
  return parsed;
}

/** FileAccessError unless the folder a file is to be written in exists, checked before any work. */
async function requireFolder(file: string): Promise<void> {
  const folder = path.dirname(file);
  const isFolder = await stat(folder).then((s) => s.isDirectory(), () => false);
  if (!isFolder) throw new FileAccessError(`Cannot write ${file}: folder ${folder} does not exist. Create it first.`, { file });
}
