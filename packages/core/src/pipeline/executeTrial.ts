import { rm } from 'node:fs/promises';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { Logger } from '../contracts/Logger.js';
import type { TrialParams } from '../contracts/SearchSpace.js';
import { applyPasses } from './applyPasses.js';
import { measureModel } from './measureModel.js';
import type { PassOutputCache } from './PassOutputCache.js';
import type { ModelMetrics } from './planObjectives.js';
import type { PreparedPipeline } from './preparePipeline.js';
import { writeOutputFile } from './writeOutputFile.js';

/** One trial to run: its number (the passes' seed), parameters, and where its model goes. */
export interface TrialRequest {
  readonly trialNumber: number;
  readonly params: TrialParams;
  /** Scratch folder of the trial's passes (removed afterwards). */
  readonly workDir: string;
  /** Where the trial's final model is written. */
  readonly modelFile: string;
  /**
   * The baseline's latency (ms): when given, the trial's latency is measured alternating with the
   * input model and scaled to this figure, so that load from other processes during the run does
   * not move the trials' latencies against the baseline's and each other's.
   */
  readonly baselineLatencyMs?: number;
}

export interface TrialMeasurement {
  readonly metrics: ModelMetrics;
  readonly passReports: Record<string, JsonValue>;
}

/** Steps 3 and 4 for one trial: the passes in order (through the cache), then the measurements; the model is written to `modelFile`. */
export async function executeTrial(
  pipeline: PreparedPipeline,
  request: TrialRequest,
  options: { readonly logger: Logger; readonly cache: PassOutputCache | undefined; readonly signal?: AbortSignal; readonly onStep?: (step: string) => void },
): Promise<TrialMeasurement> {
  try {
    const { model, reports } = await applyPasses({
      passes: pipeline.passes,
      original: pipeline.model,
      params: request.params,
      datasets: pipeline.datasets,
      target: pipeline.target.description,
      logger: options.logger,
      workDir: request.workDir,
      seed: request.trialNumber,
      cache: options.cache,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onStep === undefined ? {} : { onPass: options.onStep }),
    });
    options.onStep?.('evaluate');
    const reference = request.baselineLatencyMs === undefined ? undefined : { model: pipeline.model, latencyMs: request.baselineLatencyMs };
    const metrics = await measureModel(pipeline, model, options.logger, options.signal, reference);
    await writeOutputFile(request.modelFile, model.bytes);
    return { metrics, passReports: reports };
  } finally {
    await rm(request.workDir, { recursive: true, force: true });
  }
}
