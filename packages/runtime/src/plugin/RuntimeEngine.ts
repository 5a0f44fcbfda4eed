import { create } from '@bufbuild/protobuf';
import type {
  EvaluationContext,
  Evaluator,
  LatencyMeasurement,
  MetricValues,
  ModelArtifact,
  ModelInspector,
  ModelStatistics,
  Target,
  TargetConfig,
  TargetDescription,
} from '@open-autoglm/core';
import { countModelStats, makeModel, NodeProtoSchema, OnnxModel, ValueInfoProtoSchema } from '@open-autoglm/onnx';
import { evaluateAccuracy } from '../evaluateAccuracy.js';
import { measureLatency } from '../measureLatency.js';
import { createSession } from '../session.js';
import type { RuntimeTarget } from '../target.js';
import { arraysOf } from './NpyDatasetLoader.js';

// Large enough that per-call overhead is negligible, small enough for the fixture models' memory.
const evaluationBatch = 256;

/**
 * The engine behind the pipeline, for one `target:` section: latency on that target (a cpu
 * `Target`), top-1 accuracy (`Evaluator`) and model statistics with the per-call floor
 * (`ModelInspector`), all with onnxruntime-node.
 */
export class RuntimeEngine implements Target, Evaluator, ModelInspector {
  readonly description: TargetDescription;
  readonly metrics = ['accuracy'] as const;
  readonly #runtimeTarget: RuntimeTarget;
  readonly #statistics = new WeakMap<Uint8Array, ModelStatistics>();

  constructor(private readonly config: TargetConfig) {
    this.description = { device: config.device, threads: config.threads, batch: config.batch };
    this.#runtimeTarget = { device: config.device, threads: config.threads, optimizationLevel: config.optimizationLevel };
  }

  async measureLatency(model: ModelArtifact): Promise<LatencyMeasurement> {
    return this.#time(model.bytes, this.config.batch);
  }

  async evaluate(model: ModelArtifact, context: EvaluationContext): Promise<MetricValues> {
    const arrays = await arraysOf(context.dataset);
    const session = await createSession(model.bytes, this.#runtimeTarget, { file: model.path });
    try {
      const { accuracy } = await evaluateAccuracy(session, arrays, { batch: evaluationBatch });
      return { accuracy };
    } finally {
      await session.release();
    }
  }

  async statistics(model: ModelArtifact): Promise<ModelStatistics> {
    const known = this.#statistics.get(model.bytes);
    if (known !== undefined) return known;
    const stats = countModelStats(OnnxModel.fromBytes(model.bytes, { source: model.path }).proto, { batch: 1 });
    const result = { params: stats.params, macs: stats.macs };
    this.#statistics.set(model.bytes, result);
    return result;
  }

  async measureCallFloor(model: ModelArtifact): Promise<LatencyMeasurement> {
    return this.#time(identityModelFor(model), 1);
  }

  async #time(bytes: Uint8Array, batch: number): Promise<LatencyMeasurement> {
    const result = await measureLatency(bytes, {
      target: this.#runtimeTarget,
      batch,
      runs: this.config.runs,
      warmupRuns: this.config.warmupRuns,
    });
    return { p50Ms: result.p50Ms, p90Ms: result.p90Ms, meanMs: result.meanMs, minMs: result.minMs, maxMs: result.maxMs, runs: result.runs };
  }
}

/** A model with `model`'s inputs that returns them unchanged: one Identity node per input. */
export function identityModelFor(model: ModelArtifact): Uint8Array {
  const source = OnnxModel.fromBytes(model.bytes, { source: model.path });
  const inputs = source.graph.inputs;
  const proto = makeModel({
    name: 'call-floor',
    input: inputs,
    output: inputs.map((input) => create(ValueInfoProtoSchema, { name: `${input.name}_out`, ...(input.type === undefined ? {} : { type: input.type }) })),
    node: inputs.map((input) => create(NodeProtoSchema, { opType: 'Identity', input: [input.name], output: [`${input.name}_out`] })),
  });
  return new OnnxModel(proto).toBytes();
}
