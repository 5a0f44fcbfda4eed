import { ConfigError } from '@open-autoglm/core';
import { createSession, type ModelSource, RuntimeSession } from './session.js';
import { type SyntheticInputOptions, syntheticInputs } from './syntheticInputs.js';
import { DEFAULT_RUNTIME_TARGET, type RuntimeTarget } from './target.js';

export interface LatencyOptions extends SyntheticInputOptions {
  /** Timed runs; default 50. */
  runs?: number;
  /** Untimed runs first; default 5. */
  warmupRuns?: number;
  /** Intra-op threads when a model (not a session) is given; default the target's, else 1. */
  threads?: number;
  /** Target when a model (not a session) is given; default cpu, 1 thread, `all`, no spinning. */
  target?: Partial<RuntimeTarget>;
}

/** Summary statistics of run times in milliseconds. */
export interface LatencySummary {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

export interface LatencyResult extends LatencySummary {
  readonly runs: number;
  readonly batch: number;
  readonly threads: number;
}

/**
 * Times `session.run` on fixed synthetic inputs of the model's input shapes (symbolic batch
 * bound to `batch`). With a model instead of a session, a session is created for the target
 * (spinning off unless asked) and released afterwards. Times include onnxruntime-node's promise
 * and event-loop hop around the native run (a few microseconds), as every caller pays them.
 */
export async function measureLatency(
  sessionOrModel: RuntimeSession | ModelSource,
  options: LatencyOptions = {},
): Promise<LatencyResult> {
  const runs = options.runs ?? 50;
  const warmupRuns = options.warmupRuns ?? 5;
  if (!Number.isInteger(runs) || runs < 1) throw new ConfigError(`runs must be a whole number >= 1, got ${String(runs)}.`);
  if (!Number.isInteger(warmupRuns) || warmupRuns < 0) {
    throw new ConfigError(`warmupRuns must be a whole number >= 0, got ${String(warmupRuns)}.`);
  }
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new ConfigError(`batch must be a whole number >= 1, got ${String(batch)}.`);

  if (sessionOrModel instanceof RuntimeSession) {
    const fixed = sessionOrModel.target.threads;
    if ((options.threads !== undefined && options.threads !== fixed) || options.target !== undefined) {
      throw new ConfigError(
        `measureLatency got a session already created with ${fixed} thread(s) for model ${sessionOrModel.modelLabel}; ` +
          'threads and target apply only when a model is given. Create the session with the wanted target, or pass the model.',
      );
    }
    return timeRuns(sessionOrModel, { ...options, batch }, runs, warmupRuns);
  }
  const target: RuntimeTarget = {
    ...DEFAULT_RUNTIME_TARGET,
    ...options.target,
    threads: options.threads ?? options.target?.threads ?? DEFAULT_RUNTIME_TARGET.threads,
  };
  const session = await createSession(sessionOrModel, target);
  try {
    return await timeRuns(session, { ...options, batch }, runs, warmupRuns);
  } finally {
    await session.release();
  }
}

async function timeRuns(
  session: RuntimeSession,
  inputOptions: SyntheticInputOptions & { batch: number },
  runs: number,
  warmupRuns: number,
): Promise<LatencyResult> {
  const feeds = syntheticInputs(session, inputOptions);
  for (let i = 0; i < warmupRuns; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { ...summarizeLatencies(times), runs, batch: inputOptions.batch, threads: session.target.threads };
}

/** Percentiles (linear interpolation between closest ranks, as numpy's default), mean, min, max. */
export function summarizeLatencies(timesMs: readonly number[]): LatencySummary {
  if (timesMs.length === 0) throw new ConfigError('Cannot summarize zero latency samples; time at least one run.');
  const sorted = [...timesMs].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    minMs: sorted[0] as number,
    maxMs: sorted[sorted.length - 1] as number,
  };
}

function percentile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const low = sorted[lower] as number;
  return low + ((sorted[upper] as number) - low) * (position - lower);
}
