import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { loadConfig, type LoadedConfig } from '../config/loadConfig.js';
import { constraintsSystemAttrKey, type FrozenTrial } from '../contracts/FrozenTrial.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import { silentLogger, type Logger } from '../contracts/Logger.js';
import type { ParameterDistribution, ParameterValue, SearchSpace, TrialParams } from '../contracts/SearchSpace.js';
import type { SearchCostModel, Study, Trial } from '../contracts/Study.js';
import type { StudyStorage } from '../contracts/StudyStorage.js';
import { ConfigError, RuntimeExecutionError, StudyStorageError } from '../errors/errors.js';
import { paramsOfPass } from './applyPasses.js';
import { bestFeasibleTrial } from './bestFeasibleTrial.js';
import { feasibleParetoFront, isFeasible } from './feasibleParetoFront.js';
import { executeTrial, type TrialRequest } from './executeTrial.js';
import { measureModel } from './measureModel.js';
import { TrialWorker } from './TrialWorker.js';
import type { CompressionReport, ReportedTrial } from './CompressionReport.js';
import { openStudyRecord } from './openStudyRecord.js';
import { PassOutputCache } from './PassOutputCache.js';
import { describeViolations, planObjectives, type ModelMetrics, type ObjectivePlan } from './planObjectives.js';
import { preparePipeline, type PreparedPipeline } from './preparePipeline.js';
import { prepareRecordStudy } from './prepareRecordStudy.js';
import { renderReportHtml } from './renderReportHtml.js';
import { recoverOutputFolder, replaceOutputFolder } from './replaceOutputFolder.js';
import { startRecordTrial } from './startRecordTrial.js';
import { withPassOptions } from './withPassOptions.js';
import { writeOutputFile } from './writeOutputFile.js';

/** Progress of a run, for displays (the CLI's progress bar) and logs. */
export type CompressionEvent =
  | { readonly type: 'baseline'; readonly metrics: ModelMetrics; readonly callFloorMs: number }
  | { readonly type: 'searchSpace'; readonly parameters: number; readonly resumedTrials: number }
  | { readonly type: 'trialStart'; readonly trial: number; readonly index: number; readonly total: number }
  | { readonly type: 'trialStep'; readonly trial: number; readonly step: string }
  | {
      readonly type: 'trialEnd';
      readonly trial: number;
      readonly index: number;
      readonly total: number;
      readonly state: 'complete' | 'failed';
      readonly feasible: boolean;
      readonly metrics: ModelMetrics | undefined;
      readonly error: string | undefined;
      readonly best: { readonly trial: number; readonly metrics: ModelMetrics } | undefined;
      readonly durationMs: number;
    }
  | { readonly type: 'deployed'; readonly output: string };

export interface AutoCompressorOptions {
  /** Continue the study in the output folder's `study.db` instead of starting a new one. */
  readonly resume?: boolean;
  /** Trial budget; default the strategy's `trials`. */
  readonly trials?: number;
  /** Stop starting trials after this long (ms); default no limit. */
  readonly timeBudgetMs?: number;
  /** Stop as soon as a trial meets every objective's bound, when every objective has one; default true. */
  readonly stopWhenGoalsMet?: boolean;
  /** Reuse pass outputs across trials (and runs) from `<output>/.cache`; default true. */
  readonly cache?: boolean;
  /** Plugin specifier of the engine; default `@open-autoglm/runtime`. */
  readonly engine?: string;
  readonly logger?: Logger;
  readonly onEvent?: (event: CompressionEvent) => void;
  /** Parent of the plugins' containers; default a child of tsyringe's root container. */
  readonly container?: DependencyContainer;
  /** Aborts the run: the passes and measurements in progress are asked to stop. */
  readonly signal?: AbortSignal;
  /**
   * Where trials run: `worker` (default) in a worker thread that assembles the plugins from the
   * config file itself, so a trial can be stopped on timeout or memory exhaustion and the search
   * goes on; `none` in this thread (no timeout, no memory limit).
   */
  readonly isolation?: 'worker' | 'none';
  /** A trial still running after this long (ms) is stopped and recorded as failed (worker isolation). */
  readonly trialTimeoutMs?: number;
  /**
   * The final recovery still running after this long (ms) is stopped and the search's best kept
   * (worker isolation); default 4 times `trialTimeoutMs` (the recovery trains longer than a trial),
   * no limit when there is no trial timeout.
   */
  readonly recoveryTimeoutMs?: number;
  /**
   * Heap limit of the trial worker's JavaScript in MB (worker `resourceLimits`): it does not count
   * onnxruntime's native memory, nor Buffers and typed arrays' backing stores; `trialRssLimitMb` does.
   */
  readonly trialMemoryLimitMb?: number;
  /**
   * Resident memory of the whole process in MB (main thread, trial worker, onnxruntime's native
   * buffers), sampled every 100 ms while a trial (or the final recovery) runs in its worker: above
   * it the trial is stopped and recorded as failed. It includes what the main thread holds (the
   * datasets, the baseline's measurements), so set it above the process's size before the first
   * trial. Default none (worker isolation only).
   */
  readonly trialRssLimitMb?: number;
  /**
   * A final, longer recovery of the chosen plan (cheap proxies during the search, the full
   * recovery once): `with:` options merged over the config's for the passes named by their
   * prefix (`{ 'distiller-kd': { epochs: 5 } }`). The best trial's parameters are applied again
   * with them; the result replaces `best.onnx` when it meets every bound and is at least as
   * accurate as the searched model. It runs isolated as trials do (its own worker thread, the
   * trial memory limit, `recoveryTimeoutMs`); when it fails or times out, the search's best stays
   * `best.onnx` and the report's `recovery.error` says why. Default none.
   */
  readonly finalRecovery?: Readonly<Record<string, Readonly<Record<string, JsonValue>>>>;
  /** Stops starting new trials; the one in progress finishes and the outputs are written (Ctrl-C). */
  readonly stopSignal?: AbortSignal;
}

/** What `run()` returns: the report it wrote and where the outputs are. */
export interface CompressionResult {
  readonly report: CompressionReport;
  readonly outputDir: string;
  /** `<output>/best.onnx`, or undefined when no trial met the bounds. */
  readonly bestModel: string | undefined;
}

const studyName = 'autoglm';
/** Worker threads that fail to set up, one after the other, before the run gives up: a cause that repeats is not a trial's. */
const maxSetupFailuresInARow = 3;
/** The final recovery's timeout, in trial timeouts, when `recoveryTimeoutMs` is not given. */
const recoveryTimeoutInTrialTimeouts = 4;
const durationAttr = 'duration_ms';

interface TrialOutcome {
  readonly state: 'complete' | 'failed';
  readonly metrics: ModelMetrics | undefined;
  readonly values: readonly number[] | undefined;
  readonly constraints: readonly number[] | undefined;
  readonly error: string | undefined;
  readonly passReports: Record<string, JsonValue> | undefined;
}

/**
 * The six-step pipeline: measure the baseline, assemble the search space from the passes, run
 * trials proposed by the strategy (passes applied in order, then accuracy on the validation data,
 * latency on the target and size), stop on the trial budget, the time budget or when the goals
 * are met, and deploy the best model, the Pareto-optimal ones and a report.
 *
 * The study lives in `<output>/study.db` (Optuna's schema) when `@open-autoglm/storage-sqlite` is
 * installed: a run killed at any point resumes with `resume: true`, keeping every finished trial,
 * re-running the interrupted one under its own number, and replaying the finished ones through the
 * strategy so that a seeded search continues exactly as the uninterrupted run would have.
 */
export class AutoCompressor {
  readonly #config: LoadedConfig | string;
  readonly #options: AutoCompressorOptions;
  readonly #logger: Logger;

  /** `config`: a loaded config (`loadConfig`) or the path of an `autoglm.yaml`. */
  constructor(config: LoadedConfig | string, options: AutoCompressorOptions = {}) {
    this.#config = config;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
  }

  async run(): Promise<CompressionResult> {
    const started = Date.now();
    const loaded = typeof this.#config === 'string' ? await loadConfig(this.#config) : this.#config;
    const { config } = loaded;
    const container = this.#options.container ?? rootContainer.createChildContainer();
    const pipeline = await preparePipeline(loaded, {
      container,
      logger: this.#logger,
      ...(this.#options.engine === undefined ? {} : { engine: this.#options.engine }),
    });
    const unknownRecovery = Object.keys(this.#options.finalRecovery ?? {}).filter((prefix) => !pipeline.passes.some((p) => p.prefix === prefix));
    if (unknownRecovery.length > 0) {
      throw new ConfigError(
        `The final recovery names ${unknownRecovery.join(', ')}, which ${unknownRecovery.length === 1 ? 'is' : 'are'} not a pass of ${loaded.file} (its passes: ${pipeline.passes.map((p) => p.prefix).join(', ')}). Name the passes by these prefixes.`,
        { file: loaded.file },
      );
    }
    const outputDir = config.output;
    const clobbered = inputsInOutputs(loaded, outputDir);
    if (clobbered.length > 0) {
      throw new ConfigError(
        `The output folder ${outputDir} is where ${clobbered.join(', ')} ${clobbered.length === 1 ? 'is' : 'are'}, and a run replaces best.onnx, the reports and pareto/ there. Copy the input elsewhere, or set output: to another folder.`,
        { file: loaded.file },
      );
    }
    const workDir = path.join(outputDir, '.work');
    await mkdir(workDir, { recursive: true });
    await recoverOutputFolder(path.join(outputDir, 'pareto'));
    const record = await openStudyRecord(path.join(outputDir, 'study.db'), { fromDirs: [path.dirname(loaded.file)], required: this.#options.resume === true });

    let worker: TrialWorker | undefined;
    try {
      // Step 1: the baseline.
      const baseline = await measureModel(pipeline, pipeline.model, this.#logger, this.#options.signal);
      const callFloor = await pipeline.inspector.measureCallFloor(pipeline.model);
      this.#emit({ type: 'baseline', metrics: baseline, callFloorMs: callFloor.p50Ms });
      const plan = planObjectives(config.objectives, baseline);

      // Step 2: the search space, names prefixed per pass.
      const searchSpace = await this.#searchSpace(pipeline, workDir);
      const distributions = Object.fromEntries(searchSpace.map((p) => [p.name, p.distribution])) as Record<string, ParameterDistribution>;
      const study = pipeline.strategy.createStudy({
        directions: plan.directions,
        searchSpace,
        ...this.#costModel(pipeline, baseline, config.objectives, workDir),
      });
      const fingerprint = configFingerprint(loaded);
      const recordStudyId =
        record === undefined
          ? undefined
          : prepareRecordStudy(record, { studyName, resume: this.#options.resume === true, directions: plan.directions, metrics: plan.metrics, fingerprint, logger: this.#logger });
      const resumed = record === undefined || recordStudyId === undefined ? { pending: undefined, finished: 0 } : await this.#replay(record, recordStudyId, study, distributions);
      this.#emit({ type: 'searchSpace', parameters: searchSpace.length, resumedTrials: resumed.finished });

      // Steps 3-5: trials until a budget runs out or the goals are met.
      const budget = this.#options.trials ?? pipeline.strategy.trials;
      const cacheDir = this.#options.cache === false ? undefined : path.join(outputDir, '.cache');
      const cache = cacheDir === undefined ? undefined : new PassOutputCache(cacheDir);
      worker =
        this.#options.isolation === 'none'
          ? undefined
          : new TrialWorker({ configFile: loaded.file, engine: this.#options.engine, cacheDir, memoryLimitMb: this.#options.trialMemoryLimitMb, rssLimitMb: this.#options.trialRssLimitMb, logger: this.#logger });
      let finished = resumed.finished;
      let pending = resumed.pending;
      let stoppedBecause = `trial budget (${budget}) used`;
      let setupFailure: RuntimeExecutionError | undefined;
      let best = this.#bestTrial(record, recordStudyId, study, plan);
      if (best !== undefined) await this.#writeBest(outputDir, workDir, best.number);
      while (finished < budget || pending !== undefined) {
        if (this.#options.signal?.aborted === true || (pending === undefined && this.#options.stopSignal?.aborted === true)) {
          stoppedBecause = 'stopped by the caller';
          break;
        }
        if (pending === undefined && this.#options.timeBudgetMs !== undefined && Date.now() - started >= this.#options.timeBudgetMs) {
          stoppedBecause = `time budget (${this.#options.timeBudgetMs} ms) used`;
          break;
        }
        if (pending === undefined && this.#options.stopWhenGoalsMet !== false && plan.everyObjectiveBounded && best !== undefined) {
          stoppedBecause = 'goals met';
          break;
        }
        const trial = pending?.trial ?? (await askTrial(study, distributions));
        const recordTrialId = pending?.recordTrialId ?? (record === undefined || recordStudyId === undefined ? undefined : startRecordTrial(record, recordStudyId, trial.params, distributions));
        pending = undefined;
        this.#emit({ type: 'trialStart', trial: trial.number, index: finished + 1, total: budget });
        const trialStarted = Date.now();
        const outcome = await this.#runTrial(pipeline, plan, trial, { workDir, cache, worker, baselineLatencyMs: baseline['latency'] });
        const durationMs = Date.now() - trialStarted;
        if (outcome.constraints !== undefined) trial.setConstraints(outcome.constraints);
        for (const [key, value] of Object.entries(trialAttrs(outcome, plan, durationMs))) trial.setUserAttr(key, value);
        study.tell(trial, outcome.state === 'complete' && outcome.values !== undefined ? outcome.values : 'failed');
        if (record !== undefined && recordTrialId !== undefined) finishRecordTrial(record, recordTrialId, outcome, plan, durationMs);
        finished++;
        if (worker !== undefined && worker.setupFailuresInARow >= maxSetupFailuresInARow) {
          // Deployed first (report.json, best.onnx and pareto/ of the trials so far), then thrown.
          setupFailure = new RuntimeExecutionError(
            `The trial worker failed to set up ${worker.setupFailuresInARow} times in a row, so no trial can run; the run stopped (the trials so far are in ${path.join(outputDir, 'study.db')} and ${path.join(outputDir, 'report.json')}). ` +
              `The last failure: ${outcome.error ?? 'unknown'}. Fix its cause, then run again with --resume.`,
          );
          stoppedBecause = `the trial worker failed to set up ${worker.setupFailuresInARow} times in a row`;
          break;
        }
        const feasible = outcome.state === 'complete' && (outcome.constraints ?? []).every((c) => c <= 0);
        if (feasible) {
          const candidate = this.#bestTrial(record, recordStudyId, study, plan);
          if (candidate !== undefined && candidate.number !== best?.number) {
            best = candidate;
            await this.#writeBest(outputDir, workDir, best.number);
          }
        }
        this.#emit({
          type: 'trialEnd',
          trial: trial.number,
          index: finished,
          total: budget,
          state: outcome.state,
          feasible,
          metrics: outcome.metrics,
          error: outcome.error,
          best: best === undefined ? undefined : { trial: best.number, metrics: metricsOf(best) },
          durationMs,
        });
      }

      // Step 6: deploy.
      const report = await this.#deploy({ loaded, pipeline, plan, baseline, callFloorMs: callFloor.p50Ms, searchSpace, record, recordStudyId, study, outputDir, workDir, budget, stoppedBecause, started, cache, worker });
      this.#emit({ type: 'deployed', output: outputDir });
      if (setupFailure !== undefined) throw setupFailure;
      return { report, outputDir, bestModel: report.best === undefined ? undefined : path.join(outputDir, 'best.onnx') };
    } finally {
      await worker?.close();
      record?.close?.();
    }
  }

  #emit(event: CompressionEvent): void {
    this.#options.onEvent?.(event);
  }

  async #searchSpace(pipeline: PreparedPipeline, workDir: string): Promise<SearchSpace> {
    const space: SearchSpace[number][] = [];
    for (const { prefix, pass } of pipeline.passes) {
      const own = await pass.searchSpace(pipeline.model, this.#passContext(pipeline, path.join(workDir, 'search-space'), 0));
      for (const parameter of own) space.push({ ...parameter, name: `${prefix}.${parameter.name}` });
    }
    return space;
  }

  #passContext(pipeline: PreparedPipeline, workDir: string, seed: number) {
    return {
      logger: this.#logger,
      target: pipeline.target.description,
      original: pipeline.model,
      datasets: pipeline.datasets,
      workDir,
      seed,
      ...(this.#options.signal === undefined ? {} : { signal: this.#options.signal }),
    };
  }

  /**
   * A MACs or params budget for layer-wise strategies, when an objective bounds one of them:
   * the passes that predict their cost (pruning) predict it; the last one to do so wins, as the
   * passes after it (distillation, quantization) keep MACs and parameter counts.
   */
  #costModel(pipeline: PreparedPipeline, baseline: ModelMetrics, objectives: LoadedConfig['config']['objectives'], workDir: string): { costModel?: SearchCostModel } {
    const bounded = objectives.find((o) => (o.metric === 'macs' || o.metric === 'params') && o.limit !== undefined);
    const predictors = pipeline.passes.filter((p) => p.pass.predictCost !== undefined);
    if (bounded === undefined || bounded.limit === undefined || predictors.length === 0) return {};
    const metric = bounded.metric as 'macs' | 'params';
    const context = this.#passContext(pipeline, path.join(workDir, 'cost-model'), 0);
    return {
      costModel: {
        metric,
        baseline: baseline[metric] ?? 0,
        limit: bounded.limit,
        estimate: async (params: TrialParams) => {
          let cost = baseline[metric] ?? 0;
          for (const { prefix, pass } of predictors) {
            const predicted = await pass.predictCost?.(pipeline.model, paramsOfPass(params, prefix), context);
            if (predicted !== undefined) cost = predicted[metric];
          }
          return cost;
        },
      },
    };
  }

  /**
   * Feeds the recorded trials back through the strategy in order, so a seeded sampler ends in the
   * state the uninterrupted run had. Each recorded trial is asked again: a reproducible sampler
   * proposes the recorded params, which are checked; a sampler that proposes something else has
   * the recorded params enqueued instead (its later proposals then differ from an uninterrupted
   * run's). A trial left `running` by the killed process is the one to run next, under its number.
   */
  async #replay(
    record: StudyStorage,
    studyId: number,
    study: Study,
    distributions: Record<string, ParameterDistribution>,
  ): Promise<{ pending: { trial: Trial; recordTrialId: number } | undefined; finished: number }> {
    let finished = 0;
    let reproducible = true;
    for (const stored of record.getAllTrials(studyId)) {
      if (!reproducible) study.enqueueTrial(stored.params);
      let trial = await askTrial(study, distributions);
      if (reproducible && !sameParams(trial.params, stored.params)) {
        this.#logger.warn('the strategy does not reproduce the recorded trials; resuming with the recorded params enqueued', { trial: stored.number });
        study.tell(trial, 'failed');
        reproducible = false;
        study.enqueueTrial(stored.params);
        trial = await askTrial(study, distributions);
      }
      if (stored.state === 'running' || stored.state === 'waiting') {
        if (!sameParams(trial.params, stored.params)) {
          throw new StudyStorageError(`Cannot resume trial ${stored.number}: the strategy did not take its recorded params. Start over without --resume.`);
        }
        return { pending: { trial, recordTrialId: stored.trialId }, finished };
      }
      if (stored.constraints !== undefined) trial.setConstraints(stored.constraints);
      study.tell(trial, stored.state === 'complete' && stored.values !== undefined ? stored.values : stored.state === 'pruned' ? 'pruned' : 'failed');
      finished++;
    }
    return { pending: undefined, finished };
  }

  async #runTrial(
    pipeline: PreparedPipeline,
    plan: ObjectivePlan,
    trial: Trial,
    options: { workDir: string; cache: PassOutputCache | undefined; worker: TrialWorker | undefined; baselineLatencyMs: number | undefined },
  ): Promise<TrialOutcome> {
    const request: TrialRequest = {
      trialNumber: trial.number,
      params: trial.params,
      workDir: path.join(options.workDir, `trial-${trial.number}`),
      modelFile: trialModelFile(options.workDir, trial.number),
      ...(options.baselineLatencyMs === undefined ? {} : { baselineLatencyMs: options.baselineLatencyMs }),
    };
    const onStep = (step: string): void => this.#emit({ type: 'trialStep', trial: trial.number, step });
    try {
      const { metrics, passReports } =
        options.worker === undefined
          ? await executeTrial(pipeline, request, { logger: this.#logger, cache: options.cache, onStep, ...(this.#options.signal === undefined ? {} : { signal: this.#options.signal }) })
          : await options.worker.run(request, { timeoutMs: this.#options.trialTimeoutMs, onStep, ...(this.#options.signal === undefined ? {} : { signal: this.#options.signal }) });
      return {
        passReports,
        state: 'complete',
        metrics,
        values: plan.values(metrics),
        constraints: plan.constraints.map((c) => c.violation(metrics)),
        error: undefined,
      };
    } catch (error) {
      // A worker stopped mid-trial (timeout, memory, abort) never reached executeTrial's clean-up.
      await rm(request.workDir, { recursive: true, force: true });
      const message = error instanceof Error ? error.message : String(error);
      this.#logger.warn(`trial ${trial.number} failed: ${message}`, { trial: trial.number });
      return { state: 'failed', metrics: undefined, values: undefined, constraints: undefined, error: message, passReports: undefined };
    }
  }

  /** The best trial so far as `bestFeasibleTrial` chooses it, from the record when there is one. */
  #bestTrial(record: StudyStorage | undefined, studyId: number | undefined, study: Study, plan: ObjectivePlan): FrozenTrial | undefined {
    return bestFeasibleTrial(record === undefined || studyId === undefined ? study.trials : record.getAllTrials(studyId, ['complete']), plan);
  }

  async #writeBest(outputDir: string, workDir: string, trialNumber: number): Promise<void> {
    await copyOutputFile(trialModelFile(workDir, trialNumber), path.join(outputDir, 'best.onnx'));
  }

  async #deploy(run: {
    loaded: LoadedConfig;
    pipeline: PreparedPipeline;
    plan: ObjectivePlan;
    baseline: ModelMetrics;
    callFloorMs: number;
    searchSpace: SearchSpace;
    record: StudyStorage | undefined;
    recordStudyId: number | undefined;
    study: Study;
    outputDir: string;
    workDir: string;
    budget: number;
    stoppedBecause: string;
    started: number;
    cache: PassOutputCache | undefined;
    worker: TrialWorker | undefined;
  }): Promise<CompressionReport> {
    const { plan, outputDir } = run;
    const frozen = run.record === undefined || run.recordStudyId === undefined ? run.study.trials : run.record.getAllTrials(run.recordStudyId);
    const front = new Set(feasibleParetoFront(frozen, plan.directions).map((t) => t.number));
    const best = this.#bestTrial(run.record, run.recordStudyId, run.study, plan);
    // pareto/ is swapped in whole: a run killed here leaves the previous set or this one, complete.
    const paretoDir = path.join(outputDir, 'pareto');
    const files = new Map<number, string>();
    const paretoFiles = new Map<string, string>();
    for (const number of front) {
      paretoFiles.set(`trial-${number}.onnx`, trialModelFile(run.workDir, number));
      files.set(number, path.relative(outputDir, path.join(paretoDir, `trial-${number}.onnx`)));
    }
    await replaceOutputFolder(paretoDir, paretoFiles);
    let recovery: CompressionReport['recovery'];
    if (best !== undefined) {
      await this.#writeBest(outputDir, run.workDir, best.number);
      files.set(best.number, files.get(best.number) ?? 'best.onnx');
      if (this.#options.finalRecovery !== undefined) recovery = await this.#recover(run.loaded, run.pipeline, plan, best, run.workDir, outputDir, run.cache, run.baseline['latency']);
    }
    const reported = frozen.map((trial) => reportTrial(trial, plan, front.has(trial.number), files.get(trial.number)));
    const { config } = run.loaded;
    const report: CompressionReport = {
      config: run.loaded.file,
      model: config.model,
      target: { ...run.pipeline.target.description, optimizationLevel: config.target.optimizationLevel },
      objectives: config.objectives.map((o, i) => ({
        metric: o.metric,
        direction: plan.directions[i] ?? 'minimize',
        bound: o.maxDrop !== undefined ? `drop <= ${o.maxDrop}` : o.limit !== undefined ? `${o.maximize ? '>=' : '<='} ${o.limit}` : undefined,
      })),
      baseline: run.baseline,
      callFloorMs: run.callFloorMs,
      best: reported.find((t) => t.number === best?.number),
      ...(recovery === undefined ? {} : { recovery }),
      pareto: reported.filter((t) => t.pareto),
      trials: reported,
      searchSpace: run.searchSpace.map((p) => ({ name: p.name, layer: p.layer, distribution: p.distribution as unknown as JsonValue })),
      search: {
        strategy: `${run.pipeline.plugins.search.plugin.name}@${run.pipeline.plugins.search.plugin.version}`,
        trialBudget: run.budget,
        stoppedBecause: run.stoppedBecause,
        elapsedMs: Date.now() - run.started,
        cacheHits: (run.cache?.hits ?? 0) + (run.worker?.cacheHits ?? 0),
        cacheMisses: (run.cache?.misses ?? 0) + (run.worker?.cacheMisses ?? 0),
      },
      createdAt: new Date().toISOString(),
    };
    await writeOutputFile(path.join(outputDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeOutputFile(path.join(outputDir, 'report.html'), renderReportHtml(report));
    return report;
  }

  /**
   * Applies the best trial's parameters again with the final-recovery options, isolated as trials
   * are; adopts the result when it is feasible and no less accurate. A recovery that fails or
   * times out leaves the search's best in place and says why.
   */
  async #recover(
    loaded: LoadedConfig,
    pipeline: PreparedPipeline,
    plan: ObjectivePlan,
    best: FrozenTrial,
    workDir: string,
    outputDir: string,
    cache: PassOutputCache | undefined,
    baselineLatencyMs: number | undefined,
  ): Promise<NonNullable<CompressionReport['recovery']>> {
    const overrides = this.#options.finalRecovery ?? {};
    const passOptions = pipeline.passes.map((p) => overrides[p.prefix]);
    const modelFile = path.join(workDir, 'models', 'recovered.onnx');
    const request: TrialRequest = {
      trialNumber: best.number,
      params: best.params,
      workDir: path.join(workDir, 'recovery'),
      modelFile,
      ...(baselineLatencyMs === undefined ? {} : { baselineLatencyMs }),
    };
    const onStep = (step: string): void => this.#emit({ type: 'trialStep', trial: best.number, step: `final recovery: ${step}` });
    const signal = this.#options.signal === undefined ? {} : { signal: this.#options.signal };
    let metrics: ModelMetrics;
    try {
      if (this.#options.isolation === 'none') {
        const recoveryPipeline = await preparePipeline(withPassOptions(loaded, passOptions), {
          container: (this.#options.container ?? rootContainer).createChildContainer(),
          logger: this.#logger,
          ...(this.#options.engine === undefined ? {} : { engine: this.#options.engine }),
        });
        ({ metrics } = await executeTrial(recoveryPipeline, request, { logger: this.#logger, cache, onStep, ...signal }));
      } else {
        const worker = new TrialWorker({
          configFile: loaded.file,
          engine: this.#options.engine,
          cacheDir: cache?.folder,
          passOptions,
          memoryLimitMb: this.#options.trialMemoryLimitMb,
          rssLimitMb: this.#options.trialRssLimitMb,
          logger: this.#logger,
        });
        const trialTimeoutMs = this.#options.trialTimeoutMs;
        const timeoutMs = this.#options.recoveryTimeoutMs ?? (trialTimeoutMs === undefined ? undefined : recoveryTimeoutInTrialTimeouts * trialTimeoutMs);
        try {
          ({ metrics } = await worker.run(request, { timeoutMs, onStep, ...signal }));
        } finally {
          await worker.close();
        }
      }
    } catch (error) {
      await rm(request.workDir, { recursive: true, force: true });
      const message = (error instanceof Error ? error.message : String(error)).replace(/^Trial \d+/, 'The final recovery');
      this.#logger.warn(`the final recovery failed; best.onnx stays the search's best (trial ${best.number}): ${message}`, { trial: best.number });
      return { overrides: overrides as JsonValue, metrics: undefined, adopted: false, infeasibleBecause: [], error: message };
    }
    const infeasibleBecause = describeViolations(plan, metrics);
    const adopted = infeasibleBecause.length === 0 && (metrics['accuracy'] ?? Number.NEGATIVE_INFINITY) >= (metricsOf(best)['accuracy'] ?? Number.NEGATIVE_INFINITY);
    if (adopted) await copyOutputFile(modelFile, path.join(outputDir, 'best.onnx'));
    return { overrides: overrides as JsonValue, metrics, adopted, infeasibleBecause, error: undefined };
  }
}

/** Asks the next trial, after the study's `prepareTrial` when it has one (search-rl plans there). */
async function askTrial(study: Study, distributions: Record<string, ParameterDistribution>): Promise<Trial> {
  await study.prepareTrial?.();
  return study.ask(distributions);
}

/** Copies a work file to an output atomically (a killed run leaves no half-written model). */
async function copyOutputFile(from: string, to: string): Promise<void> {
  await writeOutputFile(to, await readFile(from));
}

function trialModelFile(workDir: string, trialNumber: number): string {
  return path.join(workDir, 'models', `trial-${trialNumber}.onnx`);
}

/** What a trial's record keeps besides params and values: metrics, why it is infeasible, its error, pass reports. */
function trialAttrs(outcome: TrialOutcome, plan: ObjectivePlan, durationMs: number): Record<string, JsonValue> {
  const attrs: Record<string, JsonValue> = { [durationAttr]: durationMs };
  if (outcome.metrics !== undefined) {
    attrs['metrics'] = { ...outcome.metrics };
    const violations = describeViolations(plan, outcome.metrics);
    if (violations.length > 0) attrs['infeasible_because'] = violations;
  }
  if (outcome.error !== undefined) attrs['error'] = outcome.error;
  if (outcome.passReports !== undefined) attrs['pass_reports'] = outcome.passReports;
  return attrs;
}

function finishRecordTrial(record: StudyStorage, trialId: number, outcome: TrialOutcome, plan: ObjectivePlan, durationMs: number): void {
  for (const [key, value] of Object.entries(trialAttrs(outcome, plan, durationMs))) record.setTrialUserAttr(trialId, key, value);
  if (outcome.constraints !== undefined) record.setTrialSystemAttr(trialId, constraintsSystemAttrKey, [...outcome.constraints]);
  if (outcome.state === 'complete' && outcome.values !== undefined) record.setTrialStateValues(trialId, 'complete', outcome.values);
  else record.setTrialStateValues(trialId, 'failed');
}

function metricsOf(trial: FrozenTrial): ModelMetrics {
  const stored = trial.userAttrs['metrics'];
  return isJsonObject(stored) ? (stored as ModelMetrics) : {};
}

function reportTrial(trial: FrozenTrial, plan: ObjectivePlan, pareto: boolean, file: string | undefined): ReportedTrial {
  const metrics = trial.state === 'complete' ? metricsOf(trial) : undefined;
  const infeasible = trial.userAttrs['infeasible_because'];
  const error = trial.userAttrs['error'];
  const duration = trial.userAttrs[durationAttr];
  const reports = trial.userAttrs['pass_reports'];
  return {
    number: trial.number,
    state: trial.state,
    params: trial.params,
    metrics,
    feasible: trial.state === 'complete' && isFeasible(trial),
    infeasibleBecause: Array.isArray(infeasible) ? infeasible.map(String) : metrics === undefined ? [] : describeViolations(plan, metrics),
    error: typeof error === 'string' ? error : undefined,
    durationMs: typeof duration === 'number' ? duration : undefined,
    pareto,
    file,
    passReports: isJsonObject(reports) ? reports : undefined,
  };
}

function isJsonObject(value: JsonValue | undefined): value is { readonly [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameParams(a: TrialParams, b: TrialParams): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => sameValue(a[key], b[key]));
}

function sameValue(a: ParameterValue | undefined, b: ParameterValue | undefined): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(a));
  return a === b;
}

/** The config's input files that a run would overwrite or delete in `outputDir` (a model compressed again from `autoglm-out/best.onnx`). */
function inputsInOutputs(loaded: LoadedConfig, outputDir: string): string[] {
  const { model, data } = loaded.config;
  const inputs = [model];
  for (const source of Object.values(data)) {
    if (source === undefined) continue;
    inputs.push(...(typeof source.x === 'string' ? [source.x] : Object.values(source.x)), ...(source.y === undefined ? [] : [source.y]));
  }
  const written = ['best.onnx', 'report.json', 'report.html', 'study.db'].map((name) => path.join(outputDir, name));
  const emptied = ['pareto', '.work', '.cache'].map((name) => path.join(outputDir, name));
  return inputs
    .map((file) => path.resolve(file.replace(/(\.npz):[^/\\]+$/i, '$1')))
    .filter((file) => written.includes(file) || emptied.some((folder) => file.startsWith(`${folder}${path.sep}`)));
}

/** What must not change between a run and its resumption. */
function configFingerprint(loaded: LoadedConfig): string {
  const { model, data, target, objectives, search, passes } = loaded.config;
  return createHash('sha256').update(JSON.stringify({ model, data, target, objectives, search, passes })).digest('hex').slice(0, 16);
}
