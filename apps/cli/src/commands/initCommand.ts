import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { ConfigError, parseConfigText } from '@open-autoglm/core';
import { OnnxModel, summarizeModel, writeFileAtomic } from '@open-autoglm/onnx';
import { loadDataset } from '@open-autoglm/runtime';
import { type CliIo, formatCount, printJson } from '../cliIo.js';

interface InitOptions {
  readonly data: string;
  readonly labels: string;
  readonly calib?: string;
  readonly trainData?: string;
  readonly trainLabels?: string;
  readonly out: string;
  readonly force?: boolean;
  readonly json?: boolean;
}

/**
 * `autoglm init <model.onnx> --data x.npy --labels y.npy`: writes a starter `autoglm.yaml` with
 * the defaults the project measured to work (1-point accuracy budget, latency and size
 * objectives, TPE over 40 trials, prune -> distill -> quantize with the passes the data allows).
 * The files are checked first and the written config is validated by the same schema `compress`
 * uses; an existing config is kept unless `--force`.
 */
export function initCommand(io: CliIo): Command {
  return new Command('init')
    .description('write a starter autoglm.yaml for a model and its data')
    .argument('<model>', 'the ONNX model to compress')
    .requiredOption('--data <x.npy>', 'validation inputs (every trial is evaluated on them)')
    .requiredOption('--labels <y.npy>', 'validation labels (class ids)')
    .option('--calib <x.npy>', 'calibration inputs for INT8 quantization (default: the validation inputs)')
    .option('--train-data <x.npy>', 'training inputs for distillation (no distillation without them)')
    .option('--train-labels <y.npy>', 'training labels for distillation')
    .option('--out <file>', 'the config file to write', 'autoglm.yaml')
    .option('--force', 'overwrite an existing config file')
    .option('--json', 'print what was written as JSON')
    .action(async (modelPath: string, options: InitOptions) => {
      const out = path.resolve(options.out);
      const inputs = [modelPath, options.data, options.labels, options.calib, options.trainData, options.trainLabels];
      if (inputs.some((file) => file !== undefined && path.resolve(file) === out)) {
        throw new ConfigError(`--out ${options.out} is one of the input files; it was left as it is. Write the config to another file with --out.`, { file: out });
      }
      if (existsSync(out) && options.force !== true) {
        throw new ConfigError(`${out} already exists; it was left as it is. Pass --force to overwrite it, or --out to write another file.`, { file: out });
      }
      if ((options.trainData === undefined) !== (options.trainLabels === undefined)) {
        throw new ConfigError('Distillation needs both --train-data and --train-labels; give both or neither.');
      }
      const model = await OnnxModel.load(modelPath);
      const stats = summarizeModel(model);
      const validation = await loadDataset({ x: options.data, y: options.labels });
      if (options.calib !== undefined) await loadDataset({ x: options.calib });
      if (options.trainData !== undefined && options.trainLabels !== undefined) await loadDataset({ x: options.trainData, y: options.trainLabels });

      const folder = path.dirname(out);
      // Quoted as a JSON string, which is a YAML double-quoted scalar: a path holding `: `, ` #`,
      // `,` or `}` keeps its meaning inside the flow mappings below.
      const relative = (file: string): string => {
        const from = path.relative(folder, path.resolve(file)).split(path.sep).join('/');
        return JSON.stringify(from.startsWith('.') ? from : `./${from}`);
      };
      const distill = options.trainData !== undefined && options.trainLabels !== undefined;
      const text = [
        '# Open-AutoGLM config written by `autoglm init`; `autoglm compress` runs it.',
        '# Every key: `autoglm schema`. Paths are relative to this file.',
        `model: ${relative(modelPath)}   # ${formatCount(stats.params)} params, ${formatCount(stats.macs)} MACs per sample`,
        'data:',
        ...(distill ? [`  train: { x: ${relative(options.trainData ?? '')}, y: ${relative(options.trainLabels ?? '')} }`] : []),
        `  calib: { x: ${relative(options.calib ?? options.data)} }`,
        `  val:   { x: ${relative(options.data)}, y: ${relative(options.labels)} }   # ${validation.size} samples`,
        '# Latency is measured here; batch 1 sits near the runtime\'s per-call floor for small models.',
        'target: { device: cpu, threads: 1, batch: 64 }',
        'objectives:',
        '  - { metric: accuracy, maxDrop: 0.01 }   # at most 1 point below the input model',
        '  - { metric: latency }',
        '  - { metric: size }',
        'search: { use: search-bayes, with: { sampler: tpe, trials: 40, seed: 0 } }',
        'passes:',
        '  - { use: pruner-structured }',
        ...(distill ? ['  - { use: distiller-kd }'] : []),
        '  - { use: quantizer-int8 }',
        'output: ./autoglm-out',
        '',
      ].join('\n');
      // The same schema `compress` applies: a starter that does not validate is a bug here, not the user's.
      parseConfigText(text, out);
      await writeFileAtomic(out, new TextEncoder().encode(text));
      if (options.json === true) {
        printJson(io, { config: out, model: path.resolve(modelPath), validationSamples: validation.size, distillation: distill });
        return;
      }
      const shellPath = /^[\w./-]+$/.test(options.out) ? options.out : `'${options.out.replace(/'/g, `'\\''`)}'`;
      io.stdout(`wrote ${out}\nnext: autoglm validate ${shellPath} && autoglm compress ${shellPath}\n`);
    });
}
