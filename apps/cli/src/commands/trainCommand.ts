import { rm } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { AutoGlmError, ConfigError } from '@open-autoglm/core';
import type { LearningRateSchedule } from '@open-autoglm/onnx';
import {
  trainInWorker,
  type TrainingEvent,
  type TrainingJob,
  type TrainingJobResult,
  type TrainingJobSpec,
} from '@open-autoglm/runtime';
import { type CliIo, printJson, processIo } from '../cliIo.js';
import { parsePositiveInteger } from '../options.js';

interface TrainOptions {
  data: string;
  labels: string;
  valData?: string;
  valLabels?: string;
  epochs?: number;
  batch?: number;
  lr?: number;
  optimizer?: 'sgd' | 'adamw';
  threads: number;
  seed?: number;
  reinit?: boolean;
  out: string;
  checkpoint?: string;
  resume?: string;
  json?: boolean;
}

/** PyTorch-style defaults per optimizer: SGD with momentum 0.9 at 0.01, AdamW at 1e-3. */
const OPTIMIZERS: Readonly<Record<'sgd' | 'adamw', { spec: TrainingJobSpec; lr: number }>> = {
  sgd: { spec: { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd', momentum: 0.9 } }, lr: 0.01 },
  adamw: { spec: { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adamw' } }, lr: 1e-3 },
};

/** Plain progress lines at most this often (besides one per epoch) when stderr is not a terminal. */
const PLAIN_PROGRESS_INTERVAL_MS = 10_000;

export function trainCommand(io: CliIo): Command {
  return new Command('train')
    .description(
      'train a model (cross-entropy on integer labels) with onnxruntime, in a worker thread; Ctrl-C stops after the current step and writes a checkpoint',
    )
    .argument('<model>', 'the .onnx model to train')
    .requiredOption('--data <x.npy>', 'training inputs, one row per sample (.npy, or file.npz:member)')
    .requiredOption('--labels <y.npy>', 'integer class labels of the training inputs')
    .option('--val-data <x.npy>', 'validation inputs, evaluated after every epoch (with --val-labels)')
    .option('--val-labels <y.npy>', 'validation labels')
    .option('--epochs <n>', 'passes over the training data (default 1)', parsePositiveInteger)
    .option('--batch <n>', 'samples per update (default 64)', parsePositiveInteger)
    .option('--lr <x>', 'learning rate (default 1e-3 for adamw, 0.01 for sgd)', parseLearningRate)
    .addOption(new Option('--optimizer <name>', 'sgd (momentum 0.9) or adamw (weight decay 0.01); default adamw').choices(['sgd', 'adamw']))
    .option('--threads <n>', 'onnxruntime intra-op threads', parsePositiveInteger, 1)
    .option('--seed <n>', 'seed of the shuffling and of --reinit (default 0)', parseSeed)
    .option('--reinit', "re-initialize the parameters first (PyTorch's default initialization, seeded by --seed)")
    .requiredOption('--out <trained.onnx>', 'where to save the trained model')
    .option('--checkpoint <file>', 'write a checkpoint here after every epoch and on Ctrl-C (default <out>.ckpt, removed when training completes)')
    .option('--resume <ckpt>', 'continue the run saved in this checkpoint (options left out are taken from it)')
    .option('--json', 'print one JSON document at the end')
    .action(async (modelPath: string, options: TrainOptions) => {
      if ((options.valData === undefined) !== (options.valLabels === undefined)) {
        throw new ConfigError('Give --val-data and --val-labels together (validation needs inputs and their labels), or neither.');
      }
      const checkpoint = options.checkpoint ?? `${options.out}.ckpt`;
      const job = trainingJob(modelPath, options, checkpoint);
      const progress = progressReporter(io, options.json === true);
      const run = trainInWorker(job, { onEvent: progress.update });
      let interrupts = 0;
      const onInterrupt = (): void => {
        interrupts++;
        if (interrupts === 1) {
          progress.stop();
          io.stderr('Stopping after the current step to write a checkpoint (press Ctrl-C again to abort without one)...\n');
          run.stop();
        } else {
          void run.terminate();
        }
      };
      process.on('SIGINT', onInterrupt);
      let result: TrainingJobResult;
      try {
        result = await run.result.catch((error: unknown) => {
          if (interrupts > 1) throw new AutoGlmError('Training aborted by a second Ctrl-C; no checkpoint was written for the last steps.', { cause: error });
          throw error;
        });
      } finally {
        process.off('SIGINT', onInterrupt);
        progress.stop();
      }
      if (result.completed && options.checkpoint === undefined) await rm(checkpoint, { force: true });
      if (!result.completed) {
        const where = result.checkpoint === null ? 'no checkpoint could be written' : `checkpoint written to ${result.checkpoint}`;
        throw new AutoGlmError(
          `Training interrupted after step ${result.position.step} (epoch ${result.position.epoch + 1}, batch ${result.position.batchInEpoch} ` +
            `of ${result.stepsPerEpoch}); ${where}. Continue with the same command plus --resume ${checkpoint}.`,
          { file: result.checkpoint ?? undefined },
        );
      }
      const validation = result.history.map((h) => h.validationAccuracy);
      if (options.json === true) {
        printJson(io, {
          model: modelPath,
          output: result.output,
          finalLoss: result.finalLoss,
          validationAccuracy: validation,
          samplesPerSecond: result.samplesPerSecond,
          steps: result.position.step,
          epochs: result.history,
          checkpoint: options.checkpoint === undefined ? null : result.checkpoint,
        });
        return;
      }
      const last = result.history.at(-1);
      io.stdout(
        `trained     ${result.output ?? options.out}\n` +
          `final loss  ${result.finalLoss?.toFixed(4) ?? 'n/a'}\n` +
          (last?.validationAccuracy == null ? '' : `val acc     ${(last.validationAccuracy * 100).toFixed(2)} %\n`) +
          `speed       ${Math.round(result.samplesPerSecond)} samples/s (${options.threads} thread${options.threads === 1 ? '' : 's'})\n`,
      );
    });
}

function trainingJob(modelPath: string, options: TrainOptions, checkpoint: string): TrainingJob {
  const optimizer = options.optimizer === undefined ? undefined : OPTIMIZERS[options.optimizer];
  const lr = options.lr ?? optimizer?.lr;
  const schedule: LearningRateSchedule | undefined = lr === undefined ? undefined : { kind: 'constant', lr };
  const defined = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
    (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
  return {
    model: modelPath,
    data: options.data,
    labels: options.labels,
    ...(options.valData === undefined || options.valLabels === undefined
      ? {}
      : { validation: { data: options.valData, labels: options.valLabels } }),
    ...defined('epochs', options.epochs),
    ...defined('batchSize', options.batch),
    ...defined('seed', options.seed),
    ...defined('spec', optimizer?.spec),
    ...defined('schedule', schedule),
    ...defined('reinitSeed', options.reinit === true ? (options.seed ?? 0) : undefined),
    threads: options.threads,
    output: options.out,
    checkpoint,
    ...defined('resume', options.resume),
  };
}

interface ProgressReporter {
  readonly update: (event: TrainingEvent) => void;
  readonly stop: () => void;
}

/** A cli-progress bar on a terminal; otherwise a line per epoch and a step line every few seconds, on stderr. */
function progressReporter(io: CliIo, quiet: boolean): ProgressReporter {
  if (io === processIo && process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        format: 'epoch {epochLabel} |{bar}| step {value}/{total} | loss {loss} | {speed} samples/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update: (event) => {
        if (event.kind === 'epoch') {
          bar.stop();
          started = false;
          process.stderr.write(`${epochLine(event)}\n`);
          return;
        }
        const payload = {
          epochLabel: `${event.epoch + 1}/${event.epochs}`,
          loss: event.loss.toFixed(4),
          speed: Math.round(event.samplesPerSecond),
        };
        if (!started) {
          bar.start(event.batchesPerEpoch, event.batchInEpoch - 1, payload);
          started = true;
        }
        bar.update(event.batchInEpoch, payload);
      },
      stop: () => {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let lastLine = Date.now();
  return {
    update: (event) => {
      if (quiet) return;
      if (event.kind === 'epoch') {
        io.stderr(`${epochLine(event)}\n`);
        lastLine = Date.now();
      } else if (Date.now() - lastLine >= PLAIN_PROGRESS_INTERVAL_MS) {
        io.stderr(
          `epoch ${event.epoch + 1}/${event.epochs}  step ${event.batchInEpoch}/${event.batchesPerEpoch}  loss ${event.loss.toFixed(4)}  ` +
            `${Math.round(event.samplesPerSecond)} samples/s  ETA ${Math.round(event.etaSeconds)} s\n`,
        );
        lastLine = Date.now();
      }
    },
    stop: () => undefined,
  };
}

function epochLine(event: Extract<TrainingEvent, { kind: 'epoch' }>): string {
  const s = event.summary;
  const percent = (v: number | null): string => (v === null ? 'n/a' : `${(v * 100).toFixed(2)} %`);
  return (
    `epoch ${s.epoch + 1}/${event.epochs}  loss ${s.trainLoss.toFixed(4)}  train acc ${percent(s.trainAccuracy)}  ` +
    `val acc ${percent(s.validationAccuracy)}  ${Math.round(s.samples / Math.max(s.seconds, 1e-9))} samples/s`
  );
}

function parseLearningRate(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}".`);
  return n;
}

function parseSeed(value: string): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a whole number, got "${value}".`);
  return n;
}
