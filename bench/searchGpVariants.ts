/**
 * `npm run bench:search-gp [-- --variants default,worstMean] [-- --seeds 1-10,101-120]
 * [-- --problems hartmann6,ackley10] [-- --trials 50] [-- --quick] [-- --out search-gp-x.json]`:
 * GPSampler configurations side by side on the search benchmark's four problems, over several
 * seed ranges, to choose defaults on seeds the targets were not measured on (1-10 are the
 * acceptance seeds; 101-120 and 201-220 are held out).
 *
 * Per variant, seed range and problem: the median best value after `--trials` trials (against
 * Optuna 5.0 GPSampler's median on seeds 1-10, the target), the runs, and the median CPU
 * ms per trial of the whole study loop (the sampler's cost; the objectives take microseconds).
 * Variants run interleaved seed by seed, so machine load hits them alike. Writes
 * bench/results/search-gp-variants.json (search-gp-variants-quick.json with --quick).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@open-autoglm/onnx';
import { GPSampler, NopPruner, createStudy, type GPSamplerOptions } from '@open-autoglm/search-bayes';
import { singleObjectiveProblems, type SingleObjectiveProblem } from './problems/singleObjectiveProblems.js';
import { benchOption, median } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');

/** The configurations compared; `default` is `new GPSampler({ seed })`, the others spell out what differs. */
const variants: Record<string, GPSamplerOptions> = {
  // The worst value seen as prior mean, a Latin hypercube start-up, Gamma(3, 6) on the lengthscales.
  default: {},
  // Optuna's: the average as prior mean, random start-up trials, its lengthscale prior (the default before 2026-11-25).
  optuna: { priorMean: 'average', startupDesign: 'random', lengthscalePrior: 'optuna' },
  worstMean: { priorMean: 'worst', startupDesign: 'random', lengthscalePrior: 'optuna' },
  latinHypercube: { priorMean: 'average', startupDesign: 'latinHypercube', lengthscalePrior: 'optuna' },
  worstMeanLatinHypercube: { priorMean: 'worst', startupDesign: 'latinHypercube', lengthscalePrior: 'optuna' },
  gammaLengthscaleAverageMean: { priorMean: 'average', startupDesign: 'random', lengthscalePrior: 'gamma' },
  // The default with Optuna's random start-up trials: what the Latin hypercube adds to it.
  defaultRandomStartup: { startupDesign: 'random' },
};

/** Optuna 5.0 GPSampler's medians at 50 trials on seeds 1-10 (issue #8's targets). */
const optunaMedians: Record<string, number> = { branin: 0.3979, hartmann6: -3.318, rosenbrock5: 407, ackley10: 12.7 };

function parseSeedRange(text: string): number[] {
  const range = /^(\d+)-(\d+)$/.exec(text);
  if (range === null) throw new Error(`--seeds takes comma-separated ranges such as 1-10,101-120; got "${text}"`);
  return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
}

const seedRanges = (benchOption('--seeds') ?? (quick ? '1-2' : '1-10,101-120,201-220')).split(',');
const trials = Number(benchOption('--trials') ?? (quick ? 15 : 50));
const variantNames = (benchOption('--variants') ?? (quick ? 'default,optuna' : 'optuna,worstMean,latinHypercube,worstMeanLatinHypercube,default')).split(',');
for (const name of variantNames) if (variants[name] === undefined) throw new Error(`unknown variant "${name}": choose among ${Object.keys(variants).join(', ')}`);
const problemNames = (benchOption('--problems') ?? singleObjectiveProblems.map((p) => p.name).join(',')).split(',');
const problems = problemNames.map((name) => {
  const problem = singleObjectiveProblems.find((p) => p.name === name);
  if (problem === undefined) throw new Error(`unknown problem "${name}": choose among ${singleObjectiveProblems.map((p) => p.name).join(', ')}`);
  return problem;
});

async function run(problem: SingleObjectiveProblem, options: GPSamplerOptions, seed: number): Promise<{ best: number; cpuMsPerTrial: number }> {
  const study = createStudy({ directions: ['minimize'], sampler: new GPSampler({ seed, ...options }), pruner: new NopPruner() });
  const start = process.cpuUsage();
  await study.optimize((trial) => problem.evaluate(problem.bounds.map(([low, high], i) => trial.suggestFloat(`x${i}`, low, high))), { trials });
  const used = process.cpuUsage(start);
  return { best: study.bestTrial.values?.[0] as number, cpuMsPerTrial: (used.user + used.system) / 1000 / trials };
}

const round = (v: number, digits = 6): number => Number(v.toPrecision(digits));
const results: Record<string, Record<string, Record<string, unknown>>> = {};
for (const name of variantNames) results[name] = {};
for (const range of seedRanges) {
  const seeds = parseSeedRange(range);
  for (const problem of problems) {
    const runs = new Map<string, { seed: number; best: number; cpuMsPerTrial: number }[]>(variantNames.map((name) => [name, []]));
    for (const seed of seeds) {
      for (const name of variantNames) runs.get(name)?.push({ seed, ...(await run(problem, variants[name] as GPSamplerOptions, seed)) });
    }
    const line: string[] = [];
    for (const name of variantNames) {
      const list = runs.get(name) ?? [];
      const best = median(list.map((r) => r.best));
      const target = optunaMedians[problem.name] as number;
      (results[name] as Record<string, Record<string, unknown>>)[`${problem.name} seeds ${range}`] = {
        medianBest: round(best),
        optunaMedianSeeds1to10: target,
        belowOptunaMedian: best <= target,
        cpuMsPerTrial: { median: round(median(list.map((r) => r.cpuMsPerTrial)), 3), max: round(Math.max(...list.map((r) => r.cpuMsPerTrial)), 3) },
        runs: list.map((r) => ({ seed: r.seed, best: round(r.best, 8), cpuMsPerTrial: round(r.cpuMsPerTrial, 3) })),
      };
      line.push(`${name} ${round(best, 6)}`);
    }
    process.stdout.write(`${problem.name} seeds ${range} @${trials}: ${line.join(' | ')}\n`);
  }
}

const report = {
  benchmark: 'search-gp-variants',
  quick,
  date: new Date().toISOString(),
  machine: { cpuModel: cpus()[0]?.model ?? 'unknown', cores: cpus().length, platform: `${process.platform} ${process.arch}`, loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').trim() },
  versions: { node: process.version, optunaReference: '5.0 GPSampler medians from issue #8 (seeds 1-10)' },
  threads: { samplers: 1, note: 'single-threaded in the Node.js main thread; CPU time is process.cpuUsage() over the whole study; variants interleaved seed by seed' },
  trials,
  seedRanges,
  variants: Object.fromEntries(variantNames.map((name) => [name, variants[name]])),
  results,
};
const outDir = join(here, 'results');
mkdirSync(outDir, { recursive: true });
const outFile = resolve(outDir, benchOption('--out') ?? (quick ? 'search-gp-variants-quick.json' : 'search-gp-variants.json'));
await writeFileAtomic(outFile, new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`));
process.stdout.write(`wrote ${outFile}\n`);
