import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the benchmark scripts share: their command-line options, medians and the training split's files. */

/** The value after `--name` on the script's command line (`npm run bench:x -- --name value`). */
export function benchOption(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * fmnist-train-10k's two files (31 MB, not in the repository): from fixtures/ when put there, else
 * from the workplace's ../shared/fixtures/; undefined when neither has both.
 */
export function trainingSplitFiles(): { readonly x: string; readonly y: string } | undefined {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
  for (const folder of [join(repo, 'fixtures'), join(repo, '..', 'shared', 'fixtures')]) {
    const x = join(folder, 'fmnist-train-10k.x.npy');
    const y = join(folder, 'fmnist-train-10k.y.npy');
    if (existsSync(x) && existsSync(y)) return { x, y };
  }
  return undefined;
}

/** `trainingSplitFiles()`, or exit with one message saying where `benchmark` looks for the files. */
export function requireTrainingSplitFiles(benchmark: string): { readonly x: string; readonly y: string } {
  const files = trainingSplitFiles();
  if (files === undefined) {
    console.error(`${benchmark} needs fmnist-train-10k.{x,y}.npy (31 MB, not in the repository): put them in fixtures/ or ../shared/fixtures/ and rerun.`);
    process.exit(1);
  }
  return files;
}
