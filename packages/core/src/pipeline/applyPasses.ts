import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Dataset, DatasetSplit } from '../contracts/DatasetLoader.js';
import type { JsonValue } from '../contracts/JsonValue.js';
import type { Logger } from '../contracts/Logger.js';
import type { ModelArtifact } from '../contracts/ModelArtifact.js';
import type { PassContext } from '../contracts/Pass.js';
import type { TrialParams } from '../contracts/SearchSpace.js';
import type { TargetDescription } from '../contracts/Target.js';
import { PassOutputCache } from './PassOutputCache.js';
import type { PipelinePass } from './preparePipeline.js';

export interface ApplyPassesOptions {
  readonly passes: readonly PipelinePass[];
  readonly original: ModelArtifact;
  /** The trial's parameters, prefixed per pass (`pruner-structured.ratio.conv1`). */
  readonly params: TrialParams;
  readonly datasets: Readonly<Partial<Record<DatasetSplit, Dataset>>>;
  readonly target: TargetDescription;
  readonly logger: Logger;
  /** Folder for this trial's pass work files. */
  readonly workDir: string;
  readonly seed: number;
  readonly cache: PassOutputCache | undefined;
  readonly signal?: AbortSignal;
  /** Called before each pass with its prefix. */
  readonly onPass?: (prefix: string) => void;
}

/** The parameters of one pass, without its prefix. */
export function paramsOfPass(params: TrialParams, prefix: string): TrialParams {
  const own: Record<string, TrialParams[string]> = {};
  for (const [name, value] of Object.entries(params)) {
    if (name.startsWith(`${prefix}.`)) own[name.slice(prefix.length + 1)] = value;
  }
  return own;
}

/**
 * Runs the passes in config order on the original model, each with its own parameters; an
 * output already computed for the same input, pass and parameters comes from the cache.
 */
export async function applyPasses(options: ApplyPassesOptions): Promise<{ model: ModelArtifact; reports: Record<string, JsonValue> }> {
  let model = options.original;
  const reports: Record<string, JsonValue> = {};
  for (const [index, { prefix, identity, pass }] of options.passes.entries()) {
    options.signal?.throwIfAborted();
    options.onPass?.(prefix);
    const params = paramsOfPass(options.params, prefix);
    const key = PassOutputCache.key(model.bytes, identity, params);
    const cached = await options.cache?.get(key);
    if (cached !== undefined) {
      model = { path: model.path, bytes: cached.bytes };
      reports[prefix] = { ...cached.report, cached: true };
      continue;
    }
    const workDir = path.join(options.workDir, `${index}-${prefix}`);
    await mkdir(workDir, { recursive: true });
    const context: PassContext = {
      logger: options.logger,
      target: options.target,
      original: options.original,
      datasets: options.datasets,
      workDir,
      seed: options.seed,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const result = await pass.apply(model, params, context);
    await options.cache?.put(key, { bytes: result.model.bytes, report: result.report });
    model = { path: model.path, bytes: result.model.bytes };
    reports[prefix] = result.report;
  }
  return { model, reports };
}
