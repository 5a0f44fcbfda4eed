import type { RuntimeSession } from './session.js';
import { type SyntheticInputOptions, syntheticInputs } from './syntheticInputs.js';

export interface WarmUpOptions extends SyntheticInputOptions {
  /** Runs to do; default 3. */
  runs?: number;
}

/**
 * Runs a session a few times on synthetic inputs so that lazy allocations, kernel selection and
 * thread-pool start-up happen before anything is measured.
 */
export async function warmUp(session: RuntimeSession, options: WarmUpOptions = {}): Promise<void> {
  const feeds = syntheticInputs(session, options);
  const runs = options.runs ?? 3;
  for (let i = 0; i < runs; i++) await session.run(feeds);
}
