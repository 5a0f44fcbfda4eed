import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type CommandInvocation, type CommandResult, ConfigError, FileAccessError, type PluginCommand } from '@open-autoglm/core';
import { OnnxModel, writeFileAtomic } from '@open-autoglm/onnx';
import { loadDataset } from '@open-autoglm/runtime';
import { IMPORTANCE_CRITERIA, type ImportanceCriterion, type ParameterGradients } from './computeImportance.js';
import { measureInputMeans } from './compensateBias.js';
import { computeParameterGradients } from './computeParameterGradients.js';
import { modelFeeds, recalibrateBatchNorm } from './recalibrateBatchNorm.js';
import { type ReconstructionReport, reconstructConsumers, reconstructionJson } from './reconstructConsumers.js';
import { StructuredPruner, type StructuredPruningReport } from './StructuredPruner.js';
import { reportJson } from './StructuredPruningPass.js';

const CALIBRATION_BATCH = 64;

function parseNumber(value: unknown, flag: string, integer: boolean, min: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || parsed < min) {
    throw new ConfigError(`${flag} must be ${integer ? 'a whole number' : 'a number'} >= ${min}, got "${String(value)}".`);
  }
  return parsed;
}

/** `--per-layer`: a JSON object inline (`{"conv1": 0.5}`) or the path of a .json file holding one. */
async function parsePerLayer(value: unknown, cwd: string): Promise<Record<string, number> | undefined> {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ConfigError('--per-layer takes a JSON object or the path of a .json file.');
  let text = value;
  let file: string | undefined;
  if (!value.trimStart().startsWith('{')) {
    file = path.resolve(cwd, value);
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new FileAccessError(`Cannot read the per-layer ratios file ${file}: ${(error as Error).message}. Give an existing .json file or an inline JSON object.`, { file, cause: error });
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`--per-layer is not valid JSON${file === undefined ? '' : ` (${file})`}: ${(error as Error).message}. Give an object like {"/conv1/Conv": 0.5}.`, { ...(file === undefined ? {} : { file }), cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'number')) {
    throw new ConfigError(`--per-layer must be a JSON object of group name -> ratio (numbers), like {"/conv1/Conv": 0.5}.`);
  }
  return parsed as Record<string, number>;
}

/** The per-group table printed without --json. */
function summaryOf(report: StructuredPruningReport, output: string, recalibrated: number, reconstruction?: ReconstructionReport): string {
  const rows = report.groups.map((g) => [
    g.group,
    g.kind,
    `${g.unitsBefore} -> ${g.unitsAfter}${g.unitSize > 1 ? ` (x${g.unitSize})` : ''}`,
    g.importanceKept === undefined ? '' : `${g.importanceKept.toPrecision(3)} / ${(g.importanceRemoved ?? 0).toPrecision(3)}`,
    g.frozen ? `frozen: ${g.reasons.join('; ')}` : '',
  ]);
  const header = ['group', 'kind', 'units', 'importance kept/removed', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  const ratio = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
  return [
    line(header),
    ...rows.map(line),
    '',
    `params  ${report.original.params} -> ${report.actual.params} (${ratio(report.actual.params, report.original.params)}; predicted ${report.predicted.params})`,
    `MACs    ${report.original.macs} -> ${report.actual.macs} (${ratio(report.actual.macs, report.original.macs)}; predicted ${report.predicted.macs})`,
    ...(recalibrated > 0 ? [`BatchNorm statistics re-estimated in ${recalibrated} layer(s)`] : []),
    ...(report.compensatedBiases > 0 ? [`biases corrected in ${report.compensatedBiases} layer(s)`] : []),
    ...(reconstruction === undefined
      ? []
      : [
          ...reconstruction.layers.map((l) => `refitted ${l.node}: relative output error ${l.errorBefore.toPrecision(3)} -> ${l.errorAfter.toPrecision(3)} (${l.rows} rows)`),
          ...reconstruction.skipped.map((l) => `not refitted ${l.node}: ${l.reason}`),
        ]),
    `wrote ${output}`,
  ].join('\n');
}

/** `autoglm prune`: structured pruning of one model, with its report. */
export const pruneCommand: PluginCommand = {
  name: 'prune',
  summary: 'structured pruning of channels, attention heads and neurons (dependency groups over the ONNX graph)',
  arguments: [{ name: 'model', description: 'the ONNX model to prune' }],
  options: [
    { flags: '--out <file>', description: 'where to write the pruned model', required: true },
    { flags: '--ratio <r>', description: 'fraction of the units removed, in [0, 1), ranked across all groups', defaultValue: '0' },
    { flags: '--per-layer <json>', description: 'ratios per group: a JSON object {"<group>": r} inline or in a .json file (groups listed leave the global ranking)' },
    { flags: '--criterion <name>', description: `importance: ${IMPORTANCE_CRITERIA.join(', ')}`, defaultValue: 'l1' },
    { flags: '--round-to <n>', description: 'kept channels per group rounded to a multiple of n (onnxruntime runs channel blocks of 8)', defaultValue: '8' },
    { flags: '--min-units <n>', description: 'units every group keeps at least', defaultValue: '1' },
    { flags: '--protect <groups...>', description: 'groups (or layers) never pruned' },
    { flags: '--calib <x.npy>', description: 'calibration inputs: BatchNorm statistics are re-estimated on them after pruning' },
    { flags: '--reconstruct', description: 'refit the layers reading removed channels by least squares so their outputs match the original\'s on --calib (instead of BatchNorm re-estimation)' },
    { flags: '--bias-correction', description: 'fold the mean contribution of removed inputs into the next layers\' biases (needs --calib; for BN-folded models)' },
    { flags: '--labels <y.npy>', description: 'calibration labels (the taylor criterion needs them)' },
    { flags: '--calib-samples <n>', description: 'calibration samples used at most', defaultValue: '512' },
    { flags: '--seed <n>', description: 'seed of the random criterion', defaultValue: '0' },
    { flags: '--report <file>', description: 'also write the report (per-group table, predicted and actual params/MACs) as JSON' },
  ],
  async run(invocation: CommandInvocation): Promise<CommandResult> {
    const { args, options, cwd, logger } = invocation;
    const modelArgument = args[0];
    if (modelArgument === undefined) throw new ConfigError('autoglm prune needs the model to prune: autoglm prune <model.onnx> --ratio 0.5 --out <pruned.onnx>.');
    const modelFile = path.resolve(cwd, modelArgument);
    const outValue = options.out;
    if (typeof outValue !== 'string') throw new ConfigError('autoglm prune needs --out <file> for the pruned model.');
    const output = path.resolve(cwd, outValue);
    const reportFile = typeof options.report === 'string' ? path.resolve(cwd, options.report) : undefined;
    const criterion = String(options.criterion ?? 'l1') as ImportanceCriterion;
    if (!IMPORTANCE_CRITERIA.includes(criterion)) {
      throw new ConfigError(`--criterion must be one of ${IMPORTANCE_CRITERIA.join(', ')}, got "${criterion}".`);
    }
    const ratio = parseNumber(options.ratio ?? '0', '--ratio', false, Number.NEGATIVE_INFINITY) as number;
    const perLayer = await parsePerLayer(options.perLayer, cwd);
    const roundTo = parseNumber(options.roundTo ?? '8', '--round-to', true, 1) as number;
    const minUnits = parseNumber(options.minUnits ?? '1', '--min-units', true, 1) as number;
    const samples = parseNumber(options.calibSamples ?? '512', '--calib-samples', true, 2) as number;
    const seed = parseNumber(options.seed ?? '0', '--seed', true, 0) as number;
    const protect = Array.isArray(options.protect) ? [...(options.protect as readonly string[])] : [];
    const calibFile = typeof options.calib === 'string' ? path.resolve(cwd, options.calib) : undefined;
    const labelsFile = typeof options.labels === 'string' ? path.resolve(cwd, options.labels) : undefined;
    if (labelsFile !== undefined && calibFile === undefined) throw new ConfigError('--labels goes with --calib <x.npy> (the calibration inputs).');
    if (criterion === 'taylor' && labelsFile === undefined) {
      throw new ConfigError('--criterion taylor needs gradients of the loss: give --calib <x.npy> and --labels <y.npy>, or choose l1, l2, fpgm, bn or random.');
    }

    // OnnxModel.save only guards the model's own file; the report and the data files need this.
    const inputFiles = [modelFile, calibFile, labelsFile];
    for (const [flag, target] of [['--out', output], ['--report', reportFile]] as const) {
      if (target !== undefined && inputFiles.includes(target)) {
        throw new ConfigError(`${flag} ${target} is one of the input files; write it to another file.`);
      }
    }
    if (reportFile === output) throw new ConfigError(`--report and --out are both ${output}; give the report a file of its own.`);

    const model = await OnnxModel.load(modelFile);
    const calib = calibFile === undefined ? undefined : await loadDataset(labelsFile === undefined ? { x: calibFile } : { x: calibFile, y: labelsFile });
    const pruner = new StructuredPruner(model);
    const pruningOptions = { ratio, ...(perLayer === undefined ? {} : { perLayer }), criterion, roundTo, minUnits, protect, seed };
    // Check the plan before the slow parts (gradients, calibration).
    pruner.keptCounts(criterion === 'taylor' ? { ...pruningOptions, criterion: 'l1' } : pruningOptions);
    let gradients: ParameterGradients | undefined;
    if (criterion === 'taylor' && calib !== undefined) {
      logger.info(`computing gradients on ${Math.min(samples, calib.size)} calibration samples`);
      gradients = await computeParameterGradients(model, pruner.taylorParameters(), calib, { batchSize: CALIBRATION_BATCH, samples });
    }
    let inputMeans: ReadonlyMap<string, Float64Array> | undefined;
    if (options.biasCorrection === true) {
      if (calib === undefined) throw new ConfigError('--bias-correction measures mean activations: give --calib <x.npy>.');
      const withGradients = { ...pruningOptions, ...(gradients === undefined ? {} : { gradients }) };
      const inputNames = model.graph.inputs.map((i) => i.name);
      inputMeans = await measureInputMeans(model, pruner.biasCompensationTargets(withGradients), modelFeeds(calib, inputNames, CALIBRATION_BATCH, samples));
    }
    if (options.reconstruct === true && calib === undefined) throw new ConfigError('--reconstruct refits layers on calibration data: give --calib <x.npy>.');
    const result = pruner.prune({ ...pruningOptions, ...(gradients === undefined ? {} : { gradients }), ...(inputMeans === undefined ? {} : { inputMeans }) });
    let reconstruction: ReconstructionReport | undefined;
    if (options.reconstruct === true && calib !== undefined) {
      const feeds = Array.from(modelFeeds(calib, result.model.graph.inputs.map((i) => i.name), CALIBRATION_BATCH, samples));
      reconstruction = await reconstructConsumers(model, result.model, pruner.analysis, result.plan, feeds, { seed });
    }
    let recalibrated: readonly string[] = [];
    // The refit matches the original's pre-BatchNorm outputs, whose statistics the BatchNorms already hold.
    if (calib !== undefined && reconstruction === undefined) {
      const inputNames = result.model.graph.inputs.map((i) => i.name);
      recalibrated = (await recalibrateBatchNorm(result.model, modelFeeds(calib, inputNames, CALIBRATION_BATCH, samples))).layers;
    }
    const data = { ...reportJson(result.report, recalibrated), ...(reconstruction === undefined ? {} : reconstructionJson(reconstruction)), output, ...(reportFile === undefined ? {} : { report: reportFile }) };
    await result.model.save(output);
    if (reportFile !== undefined) await writeFileAtomic(reportFile, new TextEncoder().encode(`${JSON.stringify(data, null, 2)}\n`));
    return { summary: summaryOf(result.report, output, recalibrated.length, reconstruction), data };
  },
};
