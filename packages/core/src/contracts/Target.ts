import type { ModelArtifact } from './ModelArtifact.js';

/** Devices a target can name (ONNX Runtime execution providers; `cpu` ships everywhere). */
export const targetDevices = ['cpu', 'cuda', 'tensorrt', 'dml', 'coreml', 'webgpu'] as const;
export type Device = (typeof targetDevices)[number];

/** What the compressed model is tuned for: the config's `target` section. */
export interface TargetDescription {
  readonly device: Device;
  /** Intra-op threads of the inference session. */
  readonly threads: number;
  /** Samples per inference call when latency is measured. */
  readonly batch: number;
}

/** Wall-clock latency of one inference call of `batch` samples, over the timed runs. */
export interface LatencyMeasurement {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Timed runs the statistics are over (warm-up runs excluded). */
  readonly runs: number;
}

/**
 * The deployment target. The target plugin is registered with the config's `target` section
 * as its options, so one `Target` describes one device setting.
 */
export interface Target {
  readonly description: TargetDescription;
  measureLatency(model: ModelArtifact, options?: { readonly signal?: AbortSignal }): Promise<LatencyMeasurement>;
}
