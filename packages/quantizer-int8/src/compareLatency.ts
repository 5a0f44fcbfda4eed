import { createSession, measureLatency, type RuntimeSession, type RuntimeTarget } from '@open-autoglm/runtime';

export interface LatencyComparisonOptions {
  /** Batch size of the synthetic inputs; default 1. */
  batch?: number;
  /** Where to measure; default cpu, 1 thread, optimization `all`, no spinning. */
  target?: RuntimeTarget;
  /** Alternating rounds; default 5. */
  rounds?: number;
  /** Time per model and round to aim for, in ms; default 40. */
  roundMs?: number;
}

/** Each model's fastest round (a round's figure is its median run time). */
export interface LatencyComparison {
  readonly aMs: number;
  readonly bMs: number;
  /** aMs / bMs: above 1 when b is faster. */
  readonly speedup: number;
}

/**
 * Latency of two models side by side: both sessions stay open and rounds alternate a, b, a, b...
 * so that load from other processes hits both alike (a shared machine drifts within seconds).
 * Each model's figure is its least disturbed round: other processes only ever add time, so the
 * fastest round's median is the closest to the model's own cost.
 */
export async function compareLatency(a: Uint8Array, b: Uint8Array, options: LatencyComparisonOptions = {}): Promise<LatencyComparison> {
  const target = options.target ?? { device: 'cpu', threads: 1 };
  const batch = options.batch ?? 1;
  const rounds = options.rounds ?? 5;
  const sessions: RuntimeSession[] = [];
  try {
    sessions.push(await createSession(a, target), await createSession(b, target));
    const [first, second] = sessions as [RuntimeSession, RuntimeSession];
    // A short probe sizes the rounds so tiny models are not timed on a handful of runs.
    const probe = Math.max((await measureLatency(first, { batch, runs: 5, warmupRuns: 2 })).p50Ms, 1e-3);
    const runs = Math.max(5, Math.min(2000, Math.round((options.roundMs ?? 40) / probe)));
    const times: [number[], number[]] = [[], []];
    for (let round = 0; round < rounds; round++) {
      for (const [i, session] of [first, second].entries()) {
        times[i]?.push((await measureLatency(session, { batch, runs, warmupRuns: 2 })).p50Ms);
      }
    }
    const aMs = Math.min(...times[0]);
    const bMs = Math.min(...times[1]);
    return { aMs, bMs, speedup: aMs / bMs };
  } finally {
    for (const session of sessions) await session.release();
  }
}
