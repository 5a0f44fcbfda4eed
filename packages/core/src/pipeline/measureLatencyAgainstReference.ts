import type { ModelArtifact } from '../contracts/ModelArtifact.js';
import type { Target } from '../contracts/Target.js';
import { ConfigError } from '../errors/errors.js';

/** Alternating rounds of the reference and the candidate per measurement. */
export const REFERENCE_LATENCY_ROUNDS = 3;

/** The model a latency is measured against, with its latency as the baseline measured it. */
export interface LatencyReference {
  readonly model: ModelArtifact;
  readonly latencyMs: number;
}

/**
 * A candidate's latency on the target, made comparable with the baseline's whatever else the
 * machine runs meanwhile: rounds alternate the reference (the input model) and the candidate,
 * each round a full `target.measureLatency`, and the candidate's fastest round is scaled by the
 * reference's known latency over its fastest round (see `scaleToReference`). A plain p50 taken
 * minutes after the baseline moves with the load of other processes by more than the difference
 * between two compressed plans; the ratio of two measurements taken side by side does not.
 */
export async function measureLatencyAgainstReference(
  target: Target,
  candidate: ModelArtifact,
  reference: LatencyReference,
  options: { readonly rounds?: number; readonly signal?: AbortSignal } = {},
): Promise<number> {
  const rounds = options.rounds ?? REFERENCE_LATENCY_ROUNDS;
  if (!Number.isInteger(rounds) || rounds < 1) throw new ConfigError(`Latency rounds must be a whole number >= 1, got ${String(rounds)}.`);
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const candidateMs: number[] = [];
  const referenceMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Which goes first alternates too, so a load change within a round hits both alike.
    const order = round % 2 === 0 ? (['reference', 'candidate'] as const) : (['candidate', 'reference'] as const);
    for (const which of order) {
      if (which === 'reference') referenceMs.push((await target.measureLatency(reference.model, signal)).p50Ms);
      else candidateMs.push((await target.measureLatency(candidate, signal)).p50Ms);
    }
  }
  return scaleToReference(candidateMs, referenceMs, reference.latencyMs);
}

/**
 * The candidate's latency at the machine state of the reference's known measurement: its fastest
 * round times `referenceLatencyMs` over the reference's fastest round. Fastest rounds, because
 * other processes only ever add time.
 */
export function scaleToReference(candidateMs: readonly number[], referenceMs: readonly number[], referenceLatencyMs: number): number {
  if (candidateMs.length === 0 || referenceMs.length === 0) throw new ConfigError('Cannot scale a latency without at least one round of each model; measure both the candidate and the reference first.');
  return (Math.min(...candidateMs) / Math.min(...referenceMs)) * referenceLatencyMs;
}
