import type { ModelStats } from './countModelStats.js';
import { countModelStats } from './countModelStats.js';
import type { OnnxModel } from './OnnxModel.js';
import type { ValueInfoProto } from './proto.js';
import { type Dim, tensorTypeOf } from './inferShapes.js';
import { dataTypeName } from './tensor.js';

/** Name, element type and shape of a graph input or output; symbolic dims stay names (`batch`). */
export interface TensorSignature {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly Dim[] | null;
}

/** One node of `ModelSummary.layers`. */
export interface LayerSummary {
  readonly name: string;
  readonly opType: string;
  readonly outputShape: readonly Dim[] | null;
  readonly params: number;
  /** Multiply-accumulates per sample; null when a needed dim is unknown. */
  readonly macs: number | null;
}

/** What `autoglm inspect` reports about a model. */
export interface ModelSummary {
  /** Parameters as PyTorch counts them (see `countModelStats`). */
  readonly params: number;
  /** Multiply-accumulates per sample of Conv, ConvTranspose, Gemm and MatMul. */
  readonly macs: number;
  /** Version of the default ONNX domain. */
  readonly opset: number | null;
  readonly irVersion: number;
  readonly producer: string;
  /** Operator type -> number of nodes; ops of other domains are keyed `domain::Op`. */
  readonly ops: Readonly<Record<string, number>>;
  readonly nodes: number;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Nodes whose MACs could not be counted because a dim is unknown. */
  readonly uncounted: readonly string[];
  /** Per node, in topological order, when asked for. */
  readonly layers?: readonly LayerSummary[];
}

export interface SummarizeModelOptions {
  /** Include one row per node. */
  readonly layers?: boolean;
}

/** Parameters, MACs, operators and signature of a model, for people and for JSON. */
export function summarizeModel(model: OnnxModel, options: SummarizeModelOptions = {}): ModelSummary {
  const stats: ModelStats = countModelStats(model.proto, { batch: 1 });
  const ops: Record<string, number> = {};
  for (const node of model.graph.nodes) {
    const key = node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}::${node.opType}`;
    ops[key] = (ops[key] ?? 0) + 1;
  }
  const summary: ModelSummary = {
    params: stats.params,
    macs: stats.macs,
    opset: model.opsetVersion() ?? null,
    irVersion: Number(model.proto.irVersion),
    producer: [model.proto.producerName, model.proto.producerVersion].filter((s) => s !== '').join(' '),
    ops: Object.fromEntries(Object.entries(ops).sort(([a, x], [b, y]) => y - x || a.localeCompare(b))),
    nodes: model.graph.nodes.length,
    inputs: model.graph.inputs.map(signatureOf),
    outputs: model.graph.outputs.map(signatureOf),
    uncounted: stats.uncounted,
  };
  if (options.layers !== true) return summary;
  const layers = stats.perNode.map((n) => ({
    name: n.node,
    opType: n.opType,
    outputShape: n.outputShape ?? null,
    params: n.params,
    macs: n.macs ?? null,
  }));
  return { ...summary, layers };
}

function signatureOf(info: ValueInfoProto): TensorSignature {
  const type = tensorTypeOf(info);
  return {
    name: info.name,
    dtype: type === undefined ? 'unknown' : dataTypeName(type.dataType),
    shape: type?.dims ?? null,
  };
}
