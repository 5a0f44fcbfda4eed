import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { AutoCompressor, ConfigError, type CompressionEvent, type CompressionReport, type JsonValue, type ModelMetrics, loadConfig } from '@open-autoglm/core';
import { type CliIo, printJson, processIo } from '../cliIo.js';
import { parsePositiveInteger } from '../options.js';

interface CompressOptions {
  readonly resume?: boolean;
  readonly trials?: number;
  readonly timeBudget?: number;
  readonly cache: boolean;
  readonly trialTimeout: number;
  readonly trialMemory: number;
  readonly trialRss?: number;
  readonly finalTimeout?: number;
  readonly final?: readonly string[];
  readonly json?: boolean;
}

/**
 * `autoglm compress <config>`: the whole pipeline (baseline, search, deploy) with a live
 * progress display: a bar on a terminal, plain lines otherwise (both on stderr, so `--json`
 * output on stdout stays one document). Ctrl-C stops after the trial in progress and still
 * writes the report of the trials so far.
 */
export function compressCommand(io: CliIo): Command {
  return new Command('compress')
    .description('search pruning, distillation and INT8 settings for a model and write the best compressed model and a report')
    .argument('<config>', 'the YAML config file (autoglm init writes a starter)')
    .option('--resume', "continue the run in the config's output folder (after a crash, kill or Ctrl-C)")
    .option('--trials <n>', "trial budget (default: the search plugin's trials)", parsePositiveInteger)
    .option('--time-budget <minutes>', 'stop starting trials after this many minutes', parsePositiveMinutes)
    .option('--trial-timeout <minutes>', 'stop a trial after this long and record it as failed', parsePositiveMinutes, 30)
    .option('--trial-memory <MB>', "heap limit of the trial worker's JavaScript (onnxruntime's own buffers are not counted: see --trial-rss)", parsePositiveInteger, 4096)
    .option('--trial-rss <MB>', "stop a trial when this process's resident memory (onnxruntime's buffers included) goes over this, sampled every 100 ms", parsePositiveInteger)
    .option('--final <pass.option=value...>', "a final, longer recovery of the best plan with these pass options (e.g. distiller-kd.epochs=5), adopted when it is feasible and no less accurate")
    .option('--final-timeout <minutes>', 'stop the final recovery after this long and keep the searched best (default: 4 trial timeouts)', parsePositiveMinutes)
    .option('--no-cache', 'apply every pass again instead of reusing outputs of identical earlier choices')
    .option('--json', 'print the report as one JSON document')
    .action(async (configPath: string, options: CompressOptions) => {
      const loaded = await loadConfig(configPath);
      const progress = progressDisplay(io, options.json === true);
      const stop = new AbortController();
      const onInterrupt = (): void => {
        if (stop.signal.aborted) process.exit(130);
        io.stderr('\nStopping after the trial in progress; the report covers the trials so far (Ctrl-C again to quit at once, then --resume).\n');
        stop.abort();
      };
      process.on('SIGINT', onInterrupt);
      let report: CompressionReport;
      let bestModel: string | undefined;
      try {
        const result = await new AutoCompressor(loaded, {
          ...(options.resume === true ? { resume: true } : {}),
          ...(options.trials === undefined ? {} : { trials: options.trials }),
          ...(options.timeBudget === undefined ? {} : { timeBudgetMs: options.timeBudget * 60_000 }),
          cache: options.cache,
          ...(options.final === undefined ? {} : { finalRecovery: parseFinalRecovery(options.final) }),
          trialTimeoutMs: options.trialTimeout * 60_000,
          trialMemoryLimitMb: options.trialMemory,
          ...(options.trialRss === undefined ? {} : { trialRssLimitMb: options.trialRss }),
          ...(options.finalTimeout === undefined ? {} : { recoveryTimeoutMs: options.finalTimeout * 60_000 }),
          onEvent: progress.update,
          stopSignal: stop.signal,
        }).run();
        report = result.report;
        bestModel = result.bestModel;
      } finally {
        process.off('SIGINT', onInterrupt);
        progress.stop();
      }
      if (options.json === true) {
        printJson(io, { bestModel: bestModel ?? null, outputDir: loaded.config.output, ...report });
        return;
      }
      io.stdout(summary(report, loaded.config.output, bestModel));
    });
}

/** `['distiller-kd.epochs=5', 'distiller-kd.teacherCache=disk']` -> `{ 'distiller-kd': { epochs: 5, teacherCache: 'disk' } }` (values read as JSON when they parse). */
function parseFinalRecovery(assignments: readonly string[]): Record<string, Record<string, JsonValue>> {
  const overrides: Record<string, Record<string, JsonValue>> = {};
  for (const assignment of assignments) {
    const match = /^([^.=]+)\.([^=]+)=(.*)$/.exec(assignment);
    if (match === null) throw new ConfigError(`--final expects <pass>.<option>=<value> (e.g. distiller-kd.epochs=5), got "${assignment}".`);
    const [, prefix = '', key = '', text = ''] = match;
    let value: JsonValue;
    try {
      value = JSON.parse(text) as JsonValue;
    } catch {
      value = text;
    }
    (overrides[prefix] ??= {})[key] = value;
  }
  return overrides;
}

function parsePositiveMinutes(value: string): number {
  const minutes = Number(value);
  if (!Number.isFinite(minutes) || minutes <= 0) throw new InvalidArgumentError(`expected a positive number of minutes, got "${value}".`);
  return minutes;
}

interface ProgressDisplay {
  readonly update: (event: CompressionEvent) => void;
  readonly stop: () => void;
}

/** `acc 91.20 %  lat 0.412 ms  size 312.4 KB` */
function describeMetrics(metrics: ModelMetrics | undefined): string {
  if (metrics === undefined) return '-';
  const parts: string[] = [];
  if (metrics['accuracy'] !== undefined) parts.push(`acc ${(metrics['accuracy'] * 100).toFixed(2)} %`);
  if (metrics['latency'] !== undefined) parts.push(`lat ${metrics['latency'].toFixed(3)} ms`);
  if (metrics['size'] !== undefined) parts.push(`size ${(metrics['size'] / 1024).toFixed(1)} KB`);
  return parts.join('  ');
}

/** A cli-progress bar (trial i/N, current step, best so far, ETA) on a terminal; one line per event otherwise. */
function progressDisplay(io: CliIo, quiet: boolean): ProgressDisplay {
  if (io === processIo && process.stderr.isTTY === true && !quiet) {
    const bar = new cliProgress.SingleBar(
      { format: 'trial {value}/{total} |{bar}| {step} | best: {best} | ETA {eta_formatted}', stream: process.stderr, hideCursor: true, etaBuffer: 10 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    let best = 'none yet';
    return {
      update: (event) => {
        if (event.type === 'baseline') {
          process.stderr.write(`baseline: ${describeMetrics(event.metrics)}  (batch-1 call floor ${event.callFloorMs.toFixed(4)} ms)\n`);
        } else if (event.type === 'trialStart') {
          if (!started) bar.start(event.total, event.index - 1, { step: 'starting', best });
          started = true;
          bar.update(event.index - 1, { step: `trial ${event.trial}: starting` });
        } else if (event.type === 'trialStep') {
          bar.update({ step: `trial ${event.trial}: ${event.step}` });
        } else if (event.type === 'trialEnd') {
          if (event.best !== undefined) best = `#${event.best.trial} ${describeMetrics(event.best.metrics)}`;
          bar.update(event.index, { step: `trial ${event.trial} ${event.state}${event.feasible ? '' : ' (infeasible)'}`, best });
        }
      },
      stop: () => {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  return {
    update: (event) => {
      if (quiet) return;
      if (event.type === 'baseline') io.stderr(`baseline: ${describeMetrics(event.metrics)}  (batch-1 call floor ${event.callFloorMs.toFixed(4)} ms)\n`);
      else if (event.type === 'searchSpace') io.stderr(`search space: ${event.parameters} parameter(s)${event.resumedTrials > 0 ? `; resumed after ${event.resumedTrials} finished trial(s)` : ''}\n`);
      else if (event.type === 'trialEnd') {
        const outcome = event.state === 'failed' ? `failed: ${event.error ?? ''}` : `${describeMetrics(event.metrics)}${event.feasible ? '' : '  (infeasible)'}`;
        const best = event.best === undefined ? 'none yet' : `#${event.best.trial}`;
        io.stderr(`trial ${event.index}/${event.total} (#${event.trial}, ${(event.durationMs / 1000).toFixed(1)} s): ${outcome}  best: ${best}\n`);
      }
    },
    stop: () => undefined,
  };
}

function describeRecovery(recovery: NonNullable<CompressionReport['recovery']>): string {
  if (recovery.adopted) return `adopted: ${describeMetrics(recovery.metrics)}`;
  if (recovery.error !== undefined) return `failed, best.onnx is the searched model: ${recovery.error}`;
  return `not adopted (${recovery.infeasibleBecause.join('; ') || 'less accurate'})`;
}

function summary(report: CompressionReport, outputDir: string, bestModel: string | undefined): string {
  const lines = [
    `${report.trials.length} trial(s), stopped: ${report.search.stoppedBecause}, ${(report.search.elapsedMs / 1000).toFixed(1)} s`,
    `input  ${describeMetrics(report.baseline)}`,
  ];
  if (report.best === undefined || bestModel === undefined) {
    lines.push('No trial met every bound of the objectives: no best.onnx. Loosen the bounds or give the search more trials.');
  } else {
    const after = report.best.metrics ?? {};
    const ratio = (key: string): string => {
      const before = report.baseline[key];
      const value = after[key];
      return before === undefined || value === undefined || value === 0 ? '?' : (before / value).toFixed(2);
    };
    lines.push(`best   ${describeMetrics(after)}  (trial ${report.best.number})`);
    lines.push(`       ${ratio('latency')}x faster, ${ratio('size')}x smaller, accuracy ${(((after['accuracy'] ?? 0) - (report.baseline['accuracy'] ?? 0)) * 100).toFixed(2)} points`);
    if (report.recovery !== undefined) lines.push(`final recovery ${describeRecovery(report.recovery)}`);
    lines.push(`written ${bestModel}`);
  }
  lines.push(`report  ${outputDir}/report.html (${report.pareto.length} Pareto-optimal model(s) in ${outputDir}/pareto)`);
  return `${lines.join('\n')}\n`;
}
