import type { Logger } from '../contracts/Logger.js';
import type { ModelArtifact } from '../contracts/ModelArtifact.js';
import { ConfigError } from '../errors/errors.js';
import { type LatencyReference, measureLatencyAgainstReference } from './measureLatencyAgainstReference.js';
import type { ModelMetrics } from './planObjectives.js';
import type { PreparedPipeline } from './preparePipeline.js';

/**
 * Step 4 of the pipeline for one model: the evaluator's metrics (accuracy) on the validation
 * data, `latency` (p50 ms of one call of the target's batch on the target; with a `reference`,
 * measured alternating with it and scaled to its known latency, see
 * `measureLatencyAgainstReference`), `size` (bytes of the serialized model), `params` and `macs`.
 */
export async function measureModel(pipeline: PreparedPipeline, model: ModelArtifact, logger: Logger, signal?: AbortSignal, reference?: LatencyReference): Promise<ModelMetrics> {
  const validation = pipeline.datasets.val;
  if (validation === undefined) throw new ConfigError('The config has no validation data (data.val); every trial is evaluated on it. Add data.val with x and y.');
  const quality = await pipeline.evaluator.evaluate(model, {
    dataset: validation,
    target: pipeline.target.description,
    logger,
    ...(signal === undefined ? {} : { signal }),
  });
  const options = signal === undefined ? {} : { signal };
  const latency =
    reference === undefined ? (await pipeline.target.measureLatency(model, options)).p50Ms : await measureLatencyAgainstReference(pipeline.target, model, reference, options);
  const statistics = await pipeline.inspector.statistics(model);
  return { ...quality, latency, size: model.bytes.byteLength, params: statistics.params, macs: statistics.macs };
}
