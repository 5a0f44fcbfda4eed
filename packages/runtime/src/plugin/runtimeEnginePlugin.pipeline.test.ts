import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AutoCompressor, type CompressionEvent, type CompressionReport } from '@open-autoglm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The engine plugin drives core's AutoCompressor end to end: LeNet-5 on 500 Fashion-MNIST
// images, a real (test-sized) pass loaded from disk, the real search-bayes strategy and the
// SQLite study database.
const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const roundWeights = fileURLToPath(new URL('./test-support/roundWeightsPlugin.js', import.meta.url));
const nativeMemory = fileURLToPath(new URL('./test-support/nativeMemoryPlugin.js', import.meta.url));

function config(dir: string, overrides: { trials?: number; pass?: string; val?: string; search?: string; objectives?: string[] } = {}): string {
  const quickstart = path.join(repo, 'examples/quickstart');
  return [
    `model: ${path.join(quickstart, 'lenet5-fmnist.onnx')}`,
    'data:',
    `  val: { x: ${overrides.val ?? path.join(quickstart, 'fmnist-val-500.x.npy')}, y: ${path.join(quickstart, 'fmnist-val-500.y.npy')} }`,
    'target: { device: cpu, threads: 1, batch: 1, runs: 10, warmupRuns: 2 }',
    'objectives:',
    ...(overrides.objectives ?? ['{ metric: accuracy, maxDrop: 0.02 }', '{ metric: latency }']).map((o) => `  - ${o}`),
    `search: ${overrides.search ?? `{ use: search-bayes, with: { sampler: tpe, trials: ${overrides.trials ?? 4}, seed: 7, startupTrials: 2 } }`}`,
    'passes:',
    `  - { use: ${overrides.pass ?? roundWeights} }`,
    `output: ${path.join(dir, 'out')}`,
    '',
  ].join('\n');
}

async function writeConfig(dir: string, text: string): Promise<string> {
  const file = path.join(dir, 'autoglm.yaml');
  await writeFile(file, text);
  return file;
}

describe('AutoCompressor with the runtime engine', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'autoglm-pipeline-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should measure the baseline, run the trials and write best.onnx, the Pareto models, the reports and the study', async () => {
    const events: CompressionEvent[] = [];
    const result = await new AutoCompressor(await writeConfig(dir, config(dir)), { onEvent: (e) => events.push(e), stopWhenGoalsMet: false }).run();
    const out = path.join(dir, 'out');
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as CompressionReport;
    expect(report.trials).toHaveLength(4);
    expect(report.trials.every((t) => t.state === 'complete')).toBe(true);
    expect(report.baseline['accuracy']).toBeGreaterThan(0.8);
    expect(report.baseline['params']).toBe(61728);
    expect(report.callFloorMs).toBeGreaterThan(0);
    // LeNet-5 has five Conv/Gemm layers: one bit-width each, prefixed with the pass's name.
    expect(report.searchSpace.map((p) => p.name)).toHaveLength(5);
    expect(report.searchSpace[0]?.name).toMatch(/^round-weights-test-pass\.bits\./);
    for (const trial of report.trials) {
      const drop = (report.baseline['accuracy'] ?? 0) - (trial.metrics?.['accuracy'] ?? 0);
      expect(trial.feasible).toBe(drop <= 0.02);
      if (!trial.feasible) expect(trial.infeasibleBecause[0]).toMatch(/^accuracy drop <= 0.02/);
    }
    expect(report.pareto.length).toBeGreaterThan(0);
    for (const trial of report.pareto) expect(existsSync(path.join(out, trial.file ?? 'missing'))).toBe(true);
    if (report.best !== undefined) {
      expect(result.bestModel).toBe(path.join(out, 'best.onnx'));
      expect(existsSync(path.join(out, 'best.onnx'))).toBe(true);
    }
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    expect(existsSync(path.join(out, 'study.db'))).toBe(true);
    expect(events.filter((e) => e.type === 'trialEnd')).toHaveLength(4);
    expect(events[0]?.type).toBe('baseline');
  });

  it('should resume a study with the finished trials kept and the same trials as one uninterrupted run', async () => {
    // One objective, accuracy, so the best trial does not hang on latency noise between runs.
    const settings = { trials: 5, objectives: ['{ metric: accuracy }'] };
    const once = await mkdtemp(path.join(dir, 'once-'));
    // In this thread: these runs check the study, not the isolation.
    const inThread = { stopWhenGoalsMet: false, isolation: 'none' } as const;
    const uninterrupted = await new AutoCompressor(await writeConfig(once, config(once, settings)), inThread).run();

    const twice = await mkdtemp(path.join(dir, 'twice-'));
    const file = await writeConfig(twice, config(twice, settings));
    await new AutoCompressor(file, { ...inThread, trials: 3 }).run();
    const resumed = await new AutoCompressor(file, { ...inThread, resume: true }).run();

    expect(resumed.report.trials.map((t) => t.number)).toEqual([0, 1, 2, 3, 4]);
    expect(resumed.report.trials.map((t) => t.params)).toEqual(uninterrupted.report.trials.map((t) => t.params));
    expect(resumed.report.trials.map((t) => t.metrics?.['accuracy'])).toEqual(uninterrupted.report.trials.map((t) => t.metrics?.['accuracy']));
    expect(resumed.report.best?.number).toBe(uninterrupted.report.best?.number);
    // The resumed run applied the pass for trials 3 and 4 only.
    expect(resumed.report.search.cacheMisses + resumed.report.search.cacheHits).toBe(2);
  });

  it('should run the same config with the search-rl strategy', async () => {
    const rl = await mkdtemp(path.join(dir, 'rl-'));
    const search = '{ use: search-rl, with: { agent: reinforce, trials: 3, seed: 1 } }';
    const { report } = await new AutoCompressor(await writeConfig(rl, config(rl, { search })), { stopWhenGoalsMet: false, isolation: 'none' }).run();
    expect(report.search.strategy).toMatch(/^@open-autoglm\/search-rl@/);
    expect(report.trials.map((t) => t.state)).toEqual(['complete', 'complete', 'complete']);
    // Every trial is one episode deciding every layer's parameter.
    for (const trial of report.trials) expect(Object.keys(trial.params)).toHaveLength(5);
  });

  it('should re-apply the best plan with the final-recovery options and adopt it when feasible and no less accurate', async () => {
    const work = await mkdtemp(path.join(dir, 'recovery-'));
    const file = await writeConfig(work, config(work, { trials: 2, objectives: ['{ metric: accuracy }'] }));
    // The test pass has no options to lengthen: re-applied as it was, it measures what the search did.
    const finalRecovery = { 'round-weights-test-pass': { unusedByThisPass: 1 } };
    const { report } = await new AutoCompressor(file, { isolation: 'none', stopWhenGoalsMet: false, finalRecovery }).run();
    expect(report.recovery?.overrides).toEqual(finalRecovery);
    expect(report.recovery?.metrics?.['accuracy']).toBe(report.best?.metrics?.['accuracy']);
    expect(report.recovery?.adopted).toBe(true);
    await expect(new AutoCompressor(file, { isolation: 'none', finalRecovery: { 'distiller-kd': { epochs: 5 } } }).run()).rejects.toThrow(
      /final recovery names distiller-kd, which is not a pass of .*\(its passes: round-weights-test-pass\)/,
    );
  });

  it('should keep the search\'s best and say why when the final recovery times out in its worker, and clean a killed run\'s pareto/ leftovers', async () => {
    const work = await mkdtemp(path.join(dir, 'recovery-timeout-'));
    const file = await writeConfig(work, config(work, { trials: 2, objectives: ['{ metric: accuracy }'] }));
    // What a run killed inside the pareto/ swap leaves behind.
    for (const leftover of ['.pareto.old', '.pareto.0a1b2c3d4e5f.tmp']) await mkdir(path.join(work, 'out', leftover), { recursive: true });
    const finalRecovery = { 'round-weights-test-pass': { unusedByThisPass: 1 } };
    const { report } = await new AutoCompressor(file, { stopWhenGoalsMet: false, finalRecovery, recoveryTimeoutMs: 1 }).run();
    expect(report.recovery?.error).toMatch(/^The final recovery timed out after 0.001 s and was stopped/);
    expect(report.recovery?.adopted).toBe(false);
    expect(report.recovery?.metrics).toBeUndefined();
    const best = report.best?.file;
    expect(best).toMatch(/^pareto\/trial-\d\.onnx$/);
    expect(await readFile(path.join(work, 'out', 'best.onnx'))).toEqual(await readFile(path.join(work, 'out', best ?? 'missing')));
    expect((await readdir(path.join(work, 'out'))).filter((name) => name.startsWith('.pareto'))).toEqual([]);
  });

  it('should start a fresh worker after one fails to set up, and stop the run when set-up fails three times in a row', async () => {
    // A pass plugin that cannot load in a worker thread while `worker-failures` counts down. It
    // fails before importing the real pass, so a failing thread does not load @open-autoglm/onnx.
    const work = await mkdtemp(path.join(dir, 'setup-'));
    const failures = path.join(work, 'worker-failures');
    const flaky = path.join(work, 'flakyPlugin.mjs');
    await writeFile(
      flaky,
      [
        "import { readFileSync, writeFileSync } from 'node:fs';",
        "import { isMainThread } from 'node:worker_threads';",
        `const left = Number(readFileSync(${JSON.stringify(failures)}, 'utf8'));`,
        'if (!isMainThread && left > 0) {',
        `  writeFileSync(${JSON.stringify(failures)}, String(left - 1));`,
        "  throw new Error('the native add-on cannot load in this thread');",
        '}',
        `export default (await import(${JSON.stringify(pathToFileURL(roundWeights).href)})).default;`,
        '',
      ].join('\n'),
    );
    await writeFile(failures, '1');
    const file = await writeConfig(work, config(work, { trials: 2, pass: flaky, objectives: ['{ metric: accuracy }'] }));
    const { report } = await new AutoCompressor(file, { stopWhenGoalsMet: false }).run();
    expect(report.trials.map((t) => t.state)).toEqual(['failed', 'complete']);
    expect(report.trials[0]?.error).toMatch(/^Trial 0 did not run: the trial worker could not set up the pipeline of .*autoglm\.yaml: .*the native add-on cannot load in this thread/s);

    await writeFile(failures, '100');
    await expect(new AutoCompressor(file, { stopWhenGoalsMet: false, trials: 10 }).run()).rejects.toThrow(
      /^The trial worker failed to set up 3 times in a row, so no trial can run; .*The last failure: Trial 2 did not run: .*the native add-on cannot load in this thread.*Fix its cause, then run again with --resume\./s,
    );
    expect(await readFile(failures, 'utf8')).toBe('97');
    // The report of the stopped run is written before the error: the three failed trials and why it stopped.
    const stopped = JSON.parse(await readFile(path.join(work, 'out', 'report.json'), 'utf8')) as { search: { stoppedBecause: string }; trials: { state: string }[] };
    expect(stopped.search.stoppedBecause).toBe('the trial worker failed to set up 3 times in a row');
    expect(stopped.trials.slice(-3).map((t) => t.state)).toEqual(['failed', 'failed', 'failed']);
  });

  it('should record trials that exceed the timeout or the memory limit as failed, with why, and go on', async () => {
    for (const [limits, reason] of [
      [{ trialTimeoutMs: 1 }, /^Trial \d timed out after 0.001 s and was stopped/],
      [{ trialMemoryLimitMb: 2 }, /^Trial \d ran out of memory \(the trial worker's limit is 2 MB\)/],
    ] as const) {
      const limited = await mkdtemp(path.join(dir, 'limited-'));
      const { report, bestModel } = await new AutoCompressor(await writeConfig(limited, config(limited, { trials: 2 })), limits).run();
      expect(report.trials.map((t) => t.state)).toEqual(['failed', 'failed']);
      for (const trial of report.trials) expect(trial.error).toMatch(reason);
      expect(bestModel).toBeUndefined();
      expect(existsSync(path.join(limited, 'out', 'report.html'))).toBe(true);
    }
  });

  it('should stop a trial whose native memory takes the process over the resident-memory limit, which the heap limit does not see', async () => {
    const work = await mkdtemp(path.join(dir, 'rss-'));
    // Up to 4 GB in Buffers' backing stores: outside the worker's JavaScript heap (limited to 128 MB here), as onnxruntime's tensors are.
    const pass = `${nativeMemory}, with: { megabytes: 4096 }`;
    const file = await writeConfig(work, config(work, { trials: 1, pass, objectives: ['{ metric: accuracy }'] }));
    const limitMb = Math.round(process.memoryUsage.rss() / 2 ** 20) + 384;
    const steps: string[] = [];
    const onEvent = (event: CompressionEvent): void => void (event.type === 'trialStep' && steps.push(event.step));
    const { report } = await new AutoCompressor(file, { trialMemoryLimitMb: 128, trialRssLimitMb: limitMb, cache: false, onEvent }).run();
    // Stopped inside the pass (the worker had set up under the limit), before the evaluation.
    expect(steps).toEqual(['native-memory-test-pass']);
    expect(report.trials.map((t) => t.state)).toEqual(['failed']);
    // The stopped worker never cleaned its scratch folder; the main thread did.
    expect(existsSync(path.join(work, 'out', '.work', 'trial-0'))).toBe(false);
    expect(report.trials[0]?.error).toMatch(new RegExp(`^Trial 0 was stopped: the process's resident memory reached \\d+ MB, over the limit of ${limitMb} MB`));
  });

  it('should stop a trial running in its worker at once when the run is aborted', async () => {
    const work = await mkdtemp(path.join(dir, 'abort-'));
    // 4 GB touched 16 MB at a time takes about a minute here: the abort must not wait for it.
    const file = await writeConfig(work, config(work, { trials: 2, pass: `${nativeMemory}, with: { megabytes: 4096 }`, objectives: ['{ metric: accuracy }'] }));
    const abort = new AbortController();
    const onEvent = (event: CompressionEvent): void => {
      if (event.type === 'trialStep') setTimeout(() => abort.abort(), 200);
    };
    const started = Date.now();
    const { report } = await new AutoCompressor(file, { signal: abort.signal, cache: false, onEvent }).run();
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(report.trials.map((t) => t.state)).toEqual(['failed']);
    expect(report.trials[0]?.error).toBe('Trial 0 was stopped: the run was aborted.');
    expect(report.search.stoppedBecause).toBe('stopped by the caller');
  });

  it('should fail before any trial, naming the YAML key, for an unknown plugin, a bad option and a missing data file', async () => {
    const cases: Array<[Parameters<typeof config>[1], RegExp]> = [
      [{ pass: 'pruner-structurd' }, /passes\[0\].*npm install pruner-structurd/s],
      [{ search: '{ use: search-bayes, with: { sampler: tpe, trials: 0 } }' }, /search\.with\.trials/],
      [{ val: './missing.x.npy' }, /data\.val\.x \(line 3 of .*missing\.x\.npy does not exist/s],
    ];
    for (const [overrides, message] of cases) {
      const caseDir = await mkdtemp(path.join(dir, 'bad-'));
      const run = new AutoCompressor(await writeConfig(caseDir, config(caseDir, overrides))).run();
      await expect(run).rejects.toThrow(message);
      expect(existsSync(path.join(caseDir, 'out'))).toBe(false);
    }
  });
});
