/**
 * `npm run bench:rl [-- --seeds 5] [-- --episodes 300] [-- --skip-pruning] [-- --pruning-episodes 120]`:
 * the benchmark of issue #8 (search-rl).
 *
 * 1. Synthetic layer-wise problem built from resnet8-fmnist's layer table (its 9 Conv layers:
 *    MACs, params, channels, kernel, stride from the model). Each layer gets a pruning ratio on
 *    the grid 0, 0.05, ..., 0.8; the score is 0.92 - sum_i s_i r_i^2 - sum_i c_i r_i r_(i+1)
 *    (sensitivity s_i falls with the layer's size, c_i couples neighbours); the cost is
 *    sum_i u_i (20 - k_i) with u_i the layer's MACs in 1/1000 of the model's and k_i the grid
 *    index of r_i (pruning output channels, separable so that the optimum is exact); the budget
 *    is 50% of the MACs. The exact optimum comes from dynamic programming over (layer, previous
 *    ratio, cost used). The search-rl plugin runs DDPG and REINFORCE through the real study API
 *    (its EpisodePlanner clips every plan to the budget), and a random policy under the same
 *    clipping runs as the baseline (warm-up for every episode). Reported: best score after 100
 *    and 300 episodes, its gap to the optimum (relative, and relative to the optimum's margin
 *    over the random policy's mean), median over the seeds; budget violations over all episodes.
 * 2. resnet8-fmnist at 50% of its MACs with @open-autoglm/pruner-structured (per-group L1 ratios,
 *    exact MACs prediction): reward = accuracy after BatchNorm recalibration (256 images of
 *    fmnist-calib) on the first 500 images of fmnist-val-2k; the DDPG plan found vs uniform
 *    pruning (one ratio for every group, the smallest whose MACs fit the same budget), both
 *    BN-recalibrated and evaluated on the whole fmnist-val-2k side by side. Also resumes the
 *    study from an SQLite file half-way (a new strategy object), as a killed search would.
 *
 * `--skip-synthetic` reruns the pruning part only (keeping the previous synthetic results);
 * `--agents ddpg,random` runs some agents only; `--agent-options '{"ddpg":{"noiseDecay":0.97}}'`
 * overrides their options.
 *
 * Writes bench/results/rl.json.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import 'reflect-metadata';
import { InMemoryStorage, PluginRegistry, StrategyToken, type ParameterDescriptor, type SearchCostModel, type StudyStorage, type TrialParams } from '@open-autoglm/core';
import { countModelStats, OnnxModel } from '@open-autoglm/onnx';
import { StructuredPruner } from '@open-autoglm/pruner-structured';
import { recalibrateBatchNorm } from '../packages/pruner-structured/src/recalibrateBatchNorm.js';
import { createSession, evaluateAccuracy, loadDataset, type Dataset } from '@open-autoglm/runtime';
import searchRl, { type LayerwiseStudy, type RlStrategy } from '@open-autoglm/search-rl';
import { SqliteStorage } from '@open-autoglm/storage-sqlite';
import { container } from 'tsyringe';
import { benchOption, median } from './benchSupport.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const args = process.argv.slice(2);
const option = benchOption;
const SEEDS = Number(option('--seeds') ?? 5);
const EPISODES = Number(option('--episodes') ?? 300);
const CHECKPOINTS = [100, EPISODES].filter((n, i, all) => n <= EPISODES && all.indexOf(n) === i);
const PRUNING_EPISODES = Number(option('--pruning-episodes') ?? 120);
const GRID = 17; // ratios 0, 0.05, ..., 0.8
const STEP = 0.05;

function strategyOf(options: Record<string, unknown>): RlStrategy {
  const registry = new PluginRegistry(container.createChildContainer());
  registry.add(searchRl, options);
  return registry.resolve(searchRl, StrategyToken) as RlStrategy;
}

// ---------------------------------------------------------------- 1. synthetic problem
interface SyntheticLayer {
  readonly name: string;
  readonly units: number; // MACs in 1/1000 of the model's conv MACs
  readonly sensitivity: number;
  readonly coupling: number; // with the next layer
  readonly features: Readonly<Record<string, number | string>>;
}

async function resnet8Layers(): Promise<SyntheticLayer[]> {
  const model = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
  const stats = countModelStats(model.proto);
  const convs = stats.perNode.filter((node) => node.opType === 'Conv');
  const totalMacs = convs.reduce((sum, node) => sum + (node.macs ?? 0), 0);
  const maxParams = Math.max(...convs.map((node) => node.params));
  return convs.map((node, index) => {
    const proto = model.graph.nodes.find((n) => n.name === node.node);
    const weight = model.proto.graph?.initializer?.find((t) => t.name === proto?.input[1]);
    const dims = (weight?.dims ?? []).map(Number);
    const stride = Number(proto?.attribute?.find((a) => a.name === 'strides')?.ints?.[0] ?? 1);
    // Small layers (few parameters) are the sensitive ones, as in practice.
    const sensitivity = 0.02 + 0.25 * (1 - Math.log(node.params) / Math.log(maxParams));
    return {
      name: node.node,
      units: Math.round((1000 * (node.macs ?? 0)) / totalMacs),
      sensitivity,
      coupling: 0.04 + 0.02 * (index % 3),
      features: { index, opType: 'Conv', inChannels: dims[1] ?? 0, outChannels: dims[0] ?? 0, kernel: (dims[2] ?? 1) * (dims[3] ?? 1), stride, macs: node.macs ?? 0, params: node.params },
    };
  });
}

function syntheticScore(layers: readonly SyntheticLayer[], k: readonly number[]): number {
  let score = 0.92;
  for (let i = 0; i < layers.length; i++) {
    const r = (k[i] as number) * STEP;
    score -= (layers[i] as SyntheticLayer).sensitivity * r * r;
    if (i + 1 < layers.length) score -= (layers[i] as SyntheticLayer).coupling * r * (k[i + 1] as number) * STEP;
  }
  return score;
}

function syntheticCost(layers: readonly SyntheticLayer[], k: readonly number[]): number {
  return layers.reduce((sum, layer, i) => sum + layer.units * (20 - (k[i] as number)), 0);
}

/** The exact optimum by dynamic programming over (layer, its ratio index, cost used so far). */
function exactOptimum(layers: readonly SyntheticLayer[], limit: number): { score: number; k: number[] } {
  const width = limit + 1;
  let best = new Float64Array(GRID * width).fill(-Infinity);
  const choices: Int8Array[] = [];
  const first = layers[0] as SyntheticLayer;
  for (let k = 0; k < GRID; k++) {
    const cost = first.units * (20 - k);
    if (cost <= limit) best[k * width + cost] = -first.sensitivity * (k * STEP) ** 2;
  }
  for (let i = 1; i < layers.length; i++) {
    const layer = layers[i] as SyntheticLayer;
    const previous = layers[i - 1] as SyntheticLayer;
    const next = new Float64Array(GRID * width).fill(-Infinity);
    const choice = new Int8Array(GRID * width).fill(-1);
    for (let k = 0; k < GRID; k++) {
      const cost = layer.units * (20 - k);
      const own = -layer.sensitivity * (k * STEP) ** 2;
      for (let kp = 0; kp < GRID; kp++) {
        const pair = own - previous.coupling * kp * STEP * k * STEP;
        for (let used = 0; used + cost <= limit; used++) {
          const value = best[kp * width + used] as number;
          if (value === -Infinity) continue;
          const at = k * width + used + cost;
          if (value + pair > (next[at] as number)) {
            next[at] = value + pair;
            choice[at] = kp;
          }
        }
      }
    }
    best = next;
    choices.push(choice);
  }
  let score = -Infinity;
  let at = -1;
  for (let i = 0; i < best.length; i++) if ((best[i] as number) > score) [score, at] = [best[i] as number, i];
  const k = new Array<number>(layers.length);
  let used = at % width;
  let current = Math.floor(at / width);
  for (let i = layers.length - 1; i >= 0; i--) {
    k[i] = current;
    if (i === 0) break;
    const previous = (choices[i - 1] as Int8Array)[current * width + used] as number;
    used -= (layers[i] as SyntheticLayer).units * (20 - current);
    current = previous;
  }
  return { score: 0.92 + score, k };
}

async function runSynthetic(): Promise<Record<string, unknown>> {
  const layers = await resnet8Layers();
  const baseline = syntheticCost(layers, layers.map(() => 0));
  const limit = Math.floor(0.5 * baseline);
  const started = performance.now();
  const optimum = exactOptimum(layers, limit);
  const dpMs = performance.now() - started;
  if (syntheticCost(layers, optimum.k) > limit || Math.abs(syntheticScore(layers, optimum.k) - optimum.score) > 1e-12) throw new Error('DP backtrack inconsistent');
  const space: ParameterDescriptor[] = layers.map((layer) => ({
    name: `ratio.${layer.name}`,
    distribution: { kind: 'float', low: 0, high: 0.8, step: STEP },
    layer: layer.name,
    features: layer.features,
  }));
  const indices = (params: TrialParams): number[] => layers.map((layer) => Math.round((params[`ratio.${layer.name}`] as number) / STEP));
  const costModel: SearchCostModel = { metric: 'macs', baseline, limit, estimate: async (params) => syntheticCost(layers, indices(params)) };
  const agents: Record<string, Record<string, unknown>> = {
    ddpg: { agent: 'ddpg', warmupEpisodes: 100, noise: 0.5, noiseDecay: 0.97, actorLearningRate: 3e-3 },
    reinforce: { agent: 'reinforce', warmupEpisodes: 10, learningRate: 0.01, entropyWeight: 0.05 },
    random: { agent: 'ddpg', warmupEpisodes: EPISODES },
  };
  const overrides = JSON.parse(option('--agent-options') ?? '{}') as Record<string, Record<string, unknown>>;
  for (const [label, extra] of Object.entries(overrides)) agents[label] = { ...agents[label], ...extra };
  const selected = (option('--agents') ?? Object.keys(agents).join(',')).split(',');
  const results: Record<string, unknown> = {};
  const randomMeans: number[] = [];
  for (const [label, agentOptions] of Object.entries(agents).filter(([label]) => selected.includes(label))) {
    const runs: Record<string, unknown>[] = [];
    let violations = 0;
    let episodes = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const t0 = performance.now();
      const study = strategyOf({ trials: EPISODES, seed, backend: 'cpu', ...agentOptions }).createStudy({ directions: ['maximize'], searchSpace: space, costModel });
      await study.optimize((trial) => syntheticScore(layers, indices(trial.params)), { trials: EPISODES });
      const scores = study.trials.map((trial) => trial.values?.[0] as number);
      violations += study.trials.filter((trial) => syntheticCost(layers, indices(trial.params)) > limit).length;
      episodes += study.trials.length;
      if (label === 'random') randomMeans.push(scores.reduce((a, b) => a + b, 0) / scores.length);
      const bestAfter = Object.fromEntries(CHECKPOINTS.map((n) => [n, Math.max(...scores.slice(0, n))]));
      runs.push({ seed, bestAfter, seconds: (performance.now() - t0) / 1000 });
      console.log(`synthetic ${label} seed ${seed}: best ${CHECKPOINTS.map((n) => `@${n} ${(bestAfter[n] as number).toFixed(5)}`).join(' ')} (optimum ${optimum.score.toFixed(5)}), ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    results[label] = { options: agentOptions, runs, violations, episodes };
  }
  const randomMean = median(randomMeans);
  for (const label of Object.keys(results)) {
    const entry = results[label] as { runs: { bestAfter: Record<number, number> }[] } & Record<string, unknown>;
    entry.medianBestAfter = Object.fromEntries(CHECKPOINTS.map((n) => [n, median(entry.runs.map((run) => run.bestAfter[n] as number))]));
    entry.medianRelativeGapAfter = Object.fromEntries(CHECKPOINTS.map((n) => [n, median(entry.runs.map((run) => (optimum.score - (run.bestAfter[n] as number)) / optimum.score))]));
    entry.medianGapOverRandomMarginAfter = Object.fromEntries(
      CHECKPOINTS.map((n) => [n, median(entry.runs.map((run) => (optimum.score - (run.bestAfter[n] as number)) / (optimum.score - randomMean)))]),
    );
  }
  return {
    layers: layers.map((layer) => ({ name: layer.name, macsUnits: layer.units, sensitivity: layer.sensitivity, coupling: layer.coupling, features: layer.features })),
    budget: { baseline, limit, fraction: limit / baseline },
    optimum: { score: optimum.score, ratios: optimum.k.map((k) => k * STEP), cost: syntheticCost(layers, optimum.k), dpMs },
    randomPolicyMeanScore: randomMean,
    seeds: SEEDS,
    episodes: EPISODES,
    agents: results,
  };
}

// ---------------------------------------------------------------- 2. resnet8-fmnist with the pruner
async function runPruning(): Promise<Record<string, unknown>> {
  const model = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
  const pruner = new StructuredPruner(model);
  const groups = pruner.prunableGroups();
  const baseline = countModelStats(model.proto).macs;
  const limit = 0.5 * baseline;
  const calib = (await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy'), y: join(fixtures, 'fmnist-calib.y.npy') })).slice(0, 256);
  const val = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });
  const valSubset = val.slice(0, 500);
  const target = { device: 'cpu' as const, threads: 1 };

  const perLayerOf = (ratios: Readonly<Record<string, number>>): Record<string, number> => Object.fromEntries(groups.map((g) => [g.name, ratios[g.name] ?? 0]));
  async function recalibratedAccuracy(ratios: Readonly<Record<string, number>>, data: Dataset): Promise<{ accuracy: number; macs: number; params: number }> {
    const { model: pruned, report } = pruner.prune({ perLayer: perLayerOf(ratios) });
    const inputName = pruned.proto.graph?.input?.[0]?.name as string;
    await recalibrateBatchNorm(pruned, [...calib.batches(64)].map((batch) => ({ [inputName]: batch.features.x as never })));
    const session = await createSession(pruned.toBytes(), target);
    try {
      const { accuracy } = await evaluateAccuracy(session, data, { batch: 250 });
      return { accuracy, macs: report.actual.macs, params: report.actual.params };
    } finally {
      await session.release();
    }
  }

  // Uniform pruning: the smallest single ratio whose MACs fit the budget (bisection on the exact prediction).
  let low = 0;
  let high = 0.95;
  for (let i = 0; i < 40; i++) {
    const middle = (low + high) / 2;
    if (pruner.predict({ perLayer: perLayerOf(Object.fromEntries(groups.map((g) => [g.name, middle]))) }).macs <= limit) high = middle;
    else low = middle;
  }
  const uniformRatio = high;
  const uniformRatios = Object.fromEntries(groups.map((g) => [g.name, uniformRatio]));

  const space: ParameterDescriptor[] = groups.map((group) => ({
    name: `ratio.${group.name}`,
    distribution: { kind: 'float', low: 0, high: 0.9 },
    layer: group.name,
    features: group.features,
  }));
  const ratiosOf = (params: TrialParams): Record<string, number> => Object.fromEntries(groups.map((g) => [g.name, params[`ratio.${g.name}`] as number]));
  const costModel: SearchCostModel = { metric: 'macs', baseline, limit, estimate: async (params) => pruner.predict({ perLayer: perLayerOf(ratiosOf(params)) }).macs };
  const agentOptions = { agent: 'ddpg', trials: PRUNING_EPISODES, warmupEpisodes: Math.floor(PRUNING_EPISODES / 3), seed: 0, noiseDecay: 0.97, backend: 'cpu' };

  // Run half, drop every object, resume from the SQLite file (what a killed search does).
  const folder = mkdtempSync(join(tmpdir(), 'bench-rl-'));
  const started = performance.now();
  let violations = 0;
  try {
    const file = join(folder, 'study.db');
    const open = (storage: StudyStorage): LayerwiseStudy =>
      strategyOf(agentOptions).createStudy({ directions: ['maximize'], storage, studyName: 'resnet8-50', loadIfExists: true, searchSpace: space, costModel });
    const objective = async (trial: { params: TrialParams }): Promise<number> => (await recalibratedAccuracy(ratiosOf(trial.params), valSubset)).accuracy;
    const firstStorage = SqliteStorage.open(file);
    await open(firstStorage).optimize(objective, { trials: Math.floor(PRUNING_EPISODES / 2), callbacks: [(_s, t) => console.log(`pruning episode ${t.number}: ${t.values?.[0]}`)] });
    firstStorage.close?.();
    const storage = SqliteStorage.open(file);
    const study = open(storage);
    await study.optimize(objective, { trials: PRUNING_EPISODES - Math.floor(PRUNING_EPISODES / 2), callbacks: [(_s, t) => console.log(`pruning episode ${t.number}: ${t.values?.[0]}`)] });
    const trials = study.trials;
    for (const trial of trials) if (pruner.predict({ perLayer: perLayerOf(ratiosOf(trial.params)) }).macs > limit) violations++;
    const best = study.bestTrial;
    // How the reward moved: the warm-up is the random policy under the same clipping.
    const rewards = trials.map((trial) => trial.values?.[0] as number);
    const rewardByWindow = Array.from({ length: Math.ceil(rewards.length / 20) }, (_, w) => {
      const window = rewards.slice(w * 20, w * 20 + 20);
      return { episodes: `${w * 20}-${w * 20 + window.length - 1}`, mean: window.reduce((a, b) => a + b, 0) / window.length, max: Math.max(...window) };
    });
    const searchSeconds = (performance.now() - started) / 1000;
    const episodesLearned = study.sampler.episodes;
    storage.close?.();
    const rl = await recalibratedAccuracy(ratiosOf(best.params), val);
    const uniform = await recalibratedAccuracy(uniformRatios, val);
    const rlSubset = best.values?.[0] as number;
    const uniformSubset = (await recalibratedAccuracy(uniformRatios, valSubset)).accuracy;
    console.log(`resnet8 50% MACs: RL ${rl.accuracy} (${rl.macs} MACs) vs uniform ${uniform.accuracy} (${uniform.macs} MACs)`);
    return {
      model: 'resnet8-fmnist',
      baseline: { macs: baseline, accuracy: (await recalibratedAccuracy({}, val)).accuracy },
      budget: { limit, fraction: 0.5 },
      groups: groups.map((g) => g.name),
      episodes: PRUNING_EPISODES,
      resumedFromSqliteAfter: Math.floor(PRUNING_EPISODES / 2),
      episodesLearnedAfterResume: episodesLearned,
      agent: agentOptions,
      reward: 'accuracy after BN recalibration (256 fmnist-calib images) on fmnist-val-2k[0:500]',
      searchSeconds,
      rewardByWindow,
      bestFoundInWarmup: best.number < agentOptions.warmupEpisodes,
      bestAfterWarmup: Math.max(...rewards.slice(agentOptions.warmupEpisodes)),
      violations,
      rl: { ratios: ratiosOf(best.params), trial: best.number, subsetAccuracy: rlSubset, valAccuracy: rl.accuracy, macs: rl.macs, params: rl.params },
      uniform: { ratio: uniformRatio, subsetAccuracy: uniformSubset, valAccuracy: uniform.accuracy, macs: uniform.macs, params: uniform.params },
      rlMinusUniformValAccuracy: rl.accuracy - uniform.accuracy,
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const versions = JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string };
const tfVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')) as { version: string }).version;
const previous = (): Record<string, unknown> => JSON.parse(readFileSync(join(here, 'results', 'rl.json'), 'utf8')) as Record<string, unknown>;
// --skip-synthetic keeps the synthetic section of the previous results (to rerun the pruning part alone).
const synthetic = args.includes('--skip-synthetic') ? (previous().synthetic as Awaited<ReturnType<typeof runSynthetic>>) : await runSynthetic();
const pruning = args.includes('--skip-pruning') ? { skipped: 'run without --skip-pruning' } : await runPruning();
const result = {
  benchmark: 'rl',
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, note: 'shared machine, other jobs running' },
  versions: { node: process.version, onnxruntimeNode: versions.version, tfjs: tfVersion, tfjsBackend: 'cpu (pure JS)' },
  threads: { onnxruntime: 1, tfjs: 1 },
  synthetic,
  pruning,
};
writeFileSync(join(here, 'results', 'rl.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify({ synthetic: Object.fromEntries(Object.entries(synthetic.agents as Record<string, Record<string, unknown>>).map(([k, v]) => [k, { gap: v.medianRelativeGapAfter, gapOverRandom: v.medianGapOverRandomMarginAfter, violations: v.violations }])) }, null, 2));
