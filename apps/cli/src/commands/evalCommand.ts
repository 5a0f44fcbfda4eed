import { Command, Option } from 'commander';
import { ConfigError } from '@open-autoglm/core';
import { compareOutputs, createSession, evaluateAccuracy, loadDataset, type RuntimeTarget } from '@open-autoglm/runtime';
import { type CliIo, printJson } from '../cliIo.js';
import { parsePositiveInteger } from '../options.js';

interface EvalOptions {
  data: string;
  labels?: string;
  reference?: string;
  batch: number;
  threads: number;
  json?: boolean;
}

export function evalCommand(io: CliIo): Command {
  return new Command('eval')
    .description('top-1 accuracy of a model on labelled data, or its agreement with a reference model')
    .argument('<model>', 'the .onnx model file')
    .requiredOption('--data <x.npy>', 'inputs, one row per sample (.npy, or file.npz:member)')
    .addOption(new Option('--labels <y.npy>', 'integer class labels, one per sample').conflicts('reference'))
    .option('--reference <model.onnx>', 'without labels: compare the outputs with this model instead')
    .option('--batch <n>', 'samples per inference run', parsePositiveInteger, 100)
    .option('--threads <n>', 'onnxruntime intra-op threads', parsePositiveInteger, 1)
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, options: EvalOptions) => {
      if (options.labels === undefined && options.reference === undefined) {
        throw new ConfigError(
          'autoglm eval needs --labels <y.npy> (to measure accuracy) or --reference <model.onnx> (to measure agreement with a reference model).',
        );
      }
      const target: RuntimeTarget = { device: 'cpu', threads: options.threads };
      const dataset = await loadDataset(
        options.labels === undefined ? { x: options.data } : { x: options.data, y: options.labels },
      );
      const session = await createSession(modelPath, target);
      try {
        if (options.reference === undefined) {
          const result = await evaluateAccuracy(session, dataset, { batch: options.batch });
          if (options.json === true) printJson(io, { model: modelPath, ...result, batch: options.batch });
          else io.stdout(`accuracy  ${(result.accuracy * 100).toFixed(2)} %  (${result.correct} of ${result.samples} samples)\n`);
          return;
        }
        const reference = await createSession(options.reference, target);
        try {
          const result = await compareOutputs(reference, session, dataset, { batch: options.batch });
          if (options.json === true) printJson(io, { model: modelPath, reference: options.reference, ...result, batch: options.batch });
          else {
            io.stdout(
              `agreement        ${(result.agreement * 100).toFixed(2)} %  (top-1 match on ${result.samples} samples)\n` +
                `max abs error    ${result.maxAbsError.toPrecision(4)}\n` +
                `mean abs error   ${result.meanAbsError.toPrecision(4)}\n`,
            );
          }
        } finally {
          await reference.release();
        }
      } finally {
        await session.release();
      }
    });
}
