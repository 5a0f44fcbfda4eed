import { createToken } from '../plugin/createToken.js';
import type { ModelArtifact } from './ModelArtifact.js';
import type { LatencyMeasurement } from './Target.js';

/** What the pipeline records of every model it produces (core cannot parse ONNX itself). */
export interface ModelStatistics {
  /** Weight elements, counted as PyTorch counts parameters. */
  readonly params: number;
  /** Multiply-accumulates per sample. */
  readonly macs: number;
}

/**
 * Reads model statistics and measures the target's fixed cost per inference call. The engine
 * (`@open-autoglm/runtime`) provides it next to the target, evaluator and dataset loader.
 */
export interface ModelInspector {
  statistics(model: ModelArtifact): Promise<ModelStatistics>;
  /**
   * Latency of one call, at batch 1 on the target, of a model that does nothing (Identity) with
   * `model`'s inputs: the floor below which no compression can push batch-1 latency.
   */
  measureCallFloor(model: ModelArtifact): Promise<LatencyMeasurement>;
}

/** Model statistics and the per-call floor, from the engine. */
export const ModelInspectorToken = createToken<ModelInspector>('core.modelInspector');
