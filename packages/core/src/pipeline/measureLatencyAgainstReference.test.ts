import { describe, expect, it } from 'vitest';
import type { ModelArtifact } from '../contracts/ModelArtifact.js';
import type { LatencyMeasurement, Target } from '../contracts/Target.js';
import { ConfigError } from '../errors/errors.js';
import { measureLatencyAgainstReference, scaleToReference } from './measureLatencyAgainstReference.js';

const reference: ModelArtifact = { path: 'input.onnx', bytes: new Uint8Array([1]) };
const candidate: ModelArtifact = { path: 'trial.onnx', bytes: new Uint8Array([2]) };

/**
 * A machine whose load changes between calls: each measurement costs the model's own time times
 * the load of that moment (`loads`, one per call), as other processes sharing the cores would.
 */
function loadedTarget(ownMs: ReadonlyMap<ModelArtifact, number>, loads: readonly number[]): Target & { readonly calls: string[] } {
  const calls: string[] = [];
  return {
    description: { device: 'cpu', threads: 1, batch: 64 },
    calls,
    async measureLatency(model: ModelArtifact): Promise<LatencyMeasurement> {
      const ms = (ownMs.get(model) as number) * (loads[calls.length] as number);
      calls.push(model.path);
      return { p50Ms: ms, p90Ms: ms, meanMs: ms, minMs: ms, maxMs: ms, runs: 1 };
    },
  };
}

describe('measureLatencyAgainstReference', () => {
  it('should scale the fastest candidate round by the reference latency over its fastest round', () => {
    expect(scaleToReference([5, 4, 6], [10, 8, 9], 7)).toBe(3.5);
    expect(() => scaleToReference([], [8], 7)).toThrow(ConfigError);
  });

  it('should alternate the reference and the candidate so that load on the machine cancels out', async () => {
    // Own costs: input 8 ms, trial 4 ms (2x faster). Load 1, then 3 (a busy spell), then 2.
    const target = loadedTarget(
      new Map([
        [reference, 8],
        [candidate, 4],
      ]),
      [1, 1, 3, 3, 2, 2],
    );
    // The baseline measured the input at 7 ms: the trial is 2x faster, so 3.5 ms.
    const latency = await measureLatencyAgainstReference(target, candidate, { model: reference, latencyMs: 7 });
    expect(latency).toBe(3.5);
    expect(target.calls).toEqual(['input.onnx', 'trial.onnx', 'trial.onnx', 'input.onnx', 'input.onnx', 'trial.onnx']);
    await expect(measureLatencyAgainstReference(target, candidate, { model: reference, latencyMs: 7 }, { rounds: 0 })).rejects.toThrow(ConfigError);
  });
});
