import { describe, expect, it } from 'vitest';
import type { FrozenTrial } from '../contracts/FrozenTrial.js';
import { TrialPruned } from '../contracts/TrialPruned.js';
import { ConfigError } from '../errors/errors.js';
import { InMemoryStorage } from './InMemoryStorage.js';
import { NopPruner } from './NopPruner.js';
import { RandomSampler } from './RandomSampler.js';
import { createStudy, loadStudy } from './createStudy.js';

const randomStudy = (directions: ('minimize' | 'maximize')[] = ['minimize'], seed = 0) =>
  createStudy({ directions, sampler: new RandomSampler({ seed }), pruner: new NopPruner() });

describe('SearchStudy', () => {
  it('should ask, suggest every kind of parameter inside its distribution, and tell', () => {
    const study = randomStudy();
    for (let i = 0; i < 50; i++) {
      const trial = study.ask();
      const lr = trial.suggestFloat('lr', 1e-5, 1e-1, { log: true });
      const ratio = trial.suggestFloat('ratio', 0, 0.7, { step: 0.05 });
      const layers = trial.suggestInt('layers', 1, 8);
      const width = trial.suggestInt('width', 16, 256, { step: 16 });
      const batch = trial.suggestInt('batch', 1, 1024, { log: true });
      const method = trial.suggestCategorical('method', ['minmax', 'entropy'] as const);
      expect(lr >= 1e-5 && lr <= 1e-1).toBe(true);
      expect(Math.abs(ratio / 0.05 - Math.round(ratio / 0.05))).toBeLessThan(1e-9);
      expect(Number.isInteger(layers) && layers >= 1 && layers <= 8).toBe(true);
      expect(width % 16).toBe(0);
      expect(Number.isInteger(batch) && batch >= 1 && batch <= 1024).toBe(true);
      expect(['minmax', 'entropy']).toContain(method);
      expect(trial.suggestFloat('lr', 1e-5, 1e-1, { log: true })).toBe(lr); // same name, same value
      study.tell(trial, lr * layers);
    }
    expect(study.trials).toHaveLength(50);
    expect(study.trials.every((trial) => trial.state === 'complete')).toBe(true);
    const best = study.bestTrial;
    expect(best.values?.[0]).toBe(Math.min(...study.trials.map((trial) => trial.values?.[0] ?? Infinity)));
  });

  it('should suggest a whole configuration with ask(space)', () => {
    const study = randomStudy();
    const trial = study.ask({ x: { kind: 'float', low: -1, high: 1 }, c: { kind: 'categorical', choices: ['a', 'b'] } });
    expect(Object.keys(trial.params).sort()).toEqual(['c', 'x']);
    expect(trial.distributions.c).toEqual({ kind: 'categorical', choices: ['a', 'b'] });
  });

  it('should refuse each bad suggestion with one ConfigError naming the parameter', () => {
    const study = randomStudy();
    const trial = study.ask();
    const message = (act: () => unknown): string => {
      try {
        act();
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(message(() => trial.suggestFloat('a', 1, 0))).toMatch(/parameter "a".*expected high >= low \(1\)/);
    expect(message(() => trial.suggestFloat('b', 0, 1, { log: true }))).toMatch(/parameter "b".*expected low > 0 on a log scale/);
    expect(message(() => trial.suggestInt('c', 0, 10, { log: true }))).toMatch(/parameter "c".*low >= 1 on a log scale/);
    expect(message(() => trial.suggestFloat('d', 0, 1, { step: 0.3 }))).toMatch(/parameter "d".*step that divides high - low/);
    expect(message(() => trial.suggestInt('e', 0, 10, { step: 3 }))).toMatch(/parameter "e".*step that divides/);
    expect(message(() => trial.suggestFloat('f', 0.1, 1, { log: true, step: 0.1 }))).toMatch(/parameter "f".*no step on a log scale/);
    expect(message(() => trial.suggestCategorical('g', []))).toMatch(/parameter "g".*at least one choice/);
    trial.suggestFloat('x', 0, 1);
    expect(message(() => trial.suggestFloat('x', 0, 2))).toMatch(/already suggested "x".*cannot be suggested again/);
    expect(message(() => trial.suggestInt('x', 0, 1))).toMatch(/already suggested "x"/);
    study.tell(trial, 1);
    // Across trials, a range may change (dynamic spaces) but not the kind.
    expect(study.ask().suggestFloat('x', 0, 2)).toBeLessThanOrEqual(2);
    expect(message(() => study.ask().suggestCategorical('x', ['a']))).toMatch(/Parameter "x" was suggested in study .* from \{"kind":"float"/);
  });

  it('should refuse bad tells and bad studies with ConfigError', () => {
    const study = randomStudy(['minimize', 'maximize']);
    const trial = study.ask();
    expect(() => study.tell(trial, 1)).toThrow(/expected 2 objective value\(s\).*marked failed/);
    expect(study.trials[0]?.state).toBe('failed');
    expect(() => study.tell(trial, [1, 2])).toThrow(/already told \(failed\)/);
    expect(() => study.tell(42, [1, 2])).toThrow(/no trial number 42/);
    expect(() => study.bestTrial).toThrow(/2 objectives.*bestTrials/);
    expect(() => createStudy({ directions: [], sampler: new RandomSampler() })).toThrow(ConfigError);
    expect(() => createStudy({ directions: ['down' as 'minimize'], sampler: new RandomSampler() })).toThrow(/unknown direction "down"/);
    expect(() => randomStudy().bestTrial).toThrow(/no complete feasible trial yet/);
    const other = randomStudy();
    expect(() => other.tell(study.ask(), [1, 2])).toThrow(/belongs to another study/);
  });

  it('should tell by number, record NaN as failed and keep the last intermediate value of a pruned trial', () => {
    const study = randomStudy();
    const first = study.ask();
    study.tell(first.number, 0.5);
    const diverged = study.tell(study.ask(), Number.NaN);
    expect(diverged.state).toBe('failed');
    expect(diverged.systemAttrs.fail_reason).toMatch(/NaN/);
    const pruned = study.ask();
    pruned.report(0.9, 0);
    pruned.report(0.7, 1);
    pruned.report(0.1, 1); // the first value at a step is kept
    expect(study.tell(pruned, 'pruned')).toMatchObject({ state: 'pruned', values: [0.7] });
    expect(() => pruned.report(1, 2)).toThrow(/already pruned/);
    expect(() => study.ask().report(1, -1)).toThrow(/step must be an integer >= 0/);
  });

  it('should run optimize with trials or a timeout, record pruned and caught failures, and rethrow others', async () => {
    const study = randomStudy(['maximize']);
    class Flaky extends Error {}
    let calls = 0;
    await study.optimize(
      (trial) => {
        calls++;
        const x = trial.suggestFloat('x', 0, 1);
        if (calls === 2) throw new Flaky('flaky evaluation');
        if (calls === 3) {
          trial.report(x, 0);
          throw new TrialPruned();
        }
        return x;
      },
      { trials: 6, catch: [Flaky] },
    );
    expect(study.trials.map((trial) => trial.state)).toEqual(['complete', 'failed', 'pruned', 'complete', 'complete', 'complete']);
    expect(study.trials[1]?.systemAttrs.fail_reason).toBe('Error: flaky evaluation');
    await expect(study.optimize(() => Promise.reject(new RangeError('broken objective')), { trials: 3 })).rejects.toThrow('broken objective');
    expect(study.trials.at(-1)?.state).toBe('failed');
    expect(study.trials).toHaveLength(7);
    await study.optimize(async (trial) => trial.suggestFloat('x', 0, 1), { timeoutMs: 0 });
    expect(study.trials).toHaveLength(7);
    await expect(study.optimize((trial) => trial.suggestFloat('x', 0, 1), {})).rejects.toThrow(/needs a budget/);
    const seen: number[] = [];
    await study.optimize((trial) => trial.suggestFloat('x', 0, 1), { trials: 2, callbacks: [(_, trial) => seen.push(trial.number)] });
    expect(seen).toEqual([7, 8]);
  });

  it('should keep only feasible trials as best, from setConstraints or a constraints function', () => {
    const study = createStudy({
      directions: ['minimize'],
      sampler: new RandomSampler({ seed: 1 }),
      constraintsFunction: (trial: FrozenTrial) => [(trial.params.x as number) - 0.5],
    });
    for (const x of [0.9, 0.4, 0.2, 0.7]) {
      const trial = study.ask({ x: { kind: 'float', low: 0, high: 1 } });
      expect(trial.params.x).toBeTypeOf('number');
      // The objective prefers large x, the constraint wants x <= 0.5.
      study.enqueueTrial({ x });
      study.tell(trial, 'failed');
      const fixed = study.ask({ x: { kind: 'float', low: 0, high: 1 } });
      expect(fixed.params.x).toBe(x);
      study.tell(fixed, -x);
    }
    expect(study.bestTrial.params.x).toBe(0.4);
    expect(study.bestTrial.constraints).toEqual([0.4 - 0.5]);
    const own = study.ask();
    own.setConstraints([1]);
    study.tell(own, -100);
    expect(study.bestTrial.params.x).toBe(0.4);
    expect(() => study.ask().setConstraints([Number.NaN])).toThrow(/list of numbers/);
  });

  it('should give the Pareto front as bestTrials, honouring each direction', () => {
    const study = randomStudy(['minimize', 'maximize']);
    const points: [number, number][] = [
      [1, 1],
      [2, 3],
      [3, 3],
      [0.5, 0.2],
      [2, 2],
    ];
    for (const point of points) study.tell(study.ask(), point);
    expect(study.bestTrials.map((trial) => trial.values)).toEqual([
      [1, 1],
      [2, 3],
      [0.5, 0.2],
    ]);
  });

  it('should refuse an enqueued value the distribution cannot produce', () => {
    const study = randomStudy();
    study.enqueueTrial({ x: 5 });
    expect(() => study.ask().suggestFloat('x', 0, 1)).toThrow(/enqueued with x = 5/);
  });

  it('should offer null as a categorical choice (Optuna\'s None), sampled and enqueued like any other', () => {
    const study = randomStudy();
    const seen = new Set<unknown>();
    for (let i = 0; i < 40; i++) {
      const trial = study.ask();
      seen.add(trial.suggestCategorical('calibration', ['minmax', null]));
      study.tell(trial, i);
    }
    expect(seen).toEqual(new Set(['minmax', null]));
    study.enqueueTrial({ calibration: null });
    const enqueued = study.ask();
    expect(enqueued.suggestCategorical('calibration', ['minmax', null])).toBeNull();
    expect(() => study.ask().suggestCategorical('calibration', ['minmax', null, null])).toThrow(/distinct choices/);
  });

  it('should resume a study by name and refuse a duplicate name or other directions', async () => {
    const storage = new InMemoryStorage();
    const first = createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', sampler: new RandomSampler({ seed: 3 }) });
    await first.optimize((trial) => trial.suggestFloat('x', 0, 1), { trials: 4 });
    first.setUserAttr('model', 'resnet8.onnx');
    expect(() => createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', sampler: new RandomSampler() })).toThrow(/already exists.*loadIfExists/);
    expect(() => createStudy({ directions: ['maximize'], storage, studyName: 'resnet8', loadIfExists: true, sampler: new RandomSampler() })).toThrow(/was created with directions \[minimize\]/);
    const resumed = createStudy({ directions: ['minimize'], storage, studyName: 'resnet8', loadIfExists: true, sampler: new RandomSampler({ seed: 4 }) });
    await resumed.optimize((trial) => trial.suggestFloat('x', 0, 1), { trials: 2 });
    expect(resumed.trials.map((trial) => trial.number)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(loadStudy({ storage, studyName: 'resnet8', sampler: new RandomSampler() }).userAttrs).toEqual({ model: 'resnet8.onnx' });
    expect(() => loadStudy({ storage, studyName: 'resnet9', sampler: new RandomSampler() })).toThrow(/No study named "resnet9".*"resnet8"/);
  });
});
