import { Command } from 'commander';
import { measureLatency } from '@open-autoglm/runtime';
import { type CliIo, printJson } from '../cliIo.js';
import { parsePositiveInteger } from '../options.js';

interface BenchOptions {
  batch: number;
  threads: number;
  runs: number;
  warmup: number;
  json?: boolean;
}

export function benchCommand(io: CliIo): Command {
  return new Command('bench')
    .description('latency of a model on this machine (onnxruntime-node CPU, optimizations "all", spinning off)')
    .argument('<model>', 'the .onnx model file')
    .option('--batch <n>', 'samples per run (binds the symbolic batch axis)', parsePositiveInteger, 1)
    .option('--threads <n>', 'onnxruntime intra-op threads', parsePositiveInteger, 1)
    .option('--runs <n>', 'timed runs', parsePositiveInteger, 100)
    .option('--warmup <n>', 'untimed runs first', parsePositiveInteger, 10)
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, options: BenchOptions) => {
      const result = await measureLatency(modelPath, {
        batch: options.batch,
        runs: options.runs,
        warmupRuns: options.warmup,
        target: { device: 'cpu', threads: options.threads },
      });
      if (options.json === true) {
        printJson(io, { model: modelPath, ...result });
        return;
      }
      const ms = (v: number): string => `${v.toFixed(3)} ms`;
      io.stdout(
        `p50   ${ms(result.p50Ms)}\np90   ${ms(result.p90Ms)}\nmean  ${ms(result.meanMs)}\n` +
          `min   ${ms(result.minMs)}\nmax   ${ms(result.maxMs)}\n` +
          `(${result.runs} runs, batch ${result.batch}, ${result.threads} thread${result.threads === 1 ? '' : 's'})\n`,
      );
    });
}
