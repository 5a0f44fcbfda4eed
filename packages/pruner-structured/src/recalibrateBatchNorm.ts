import { DatasetError } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  inferShapes,
  isDefaultDomain,
  makeNode,
  makeTensorValueInfo,
  type NodeProto,
  type OnnxModel,
  OnnxGraph,
} from '@open-autoglm/onnx';
import { createSession, Dataset, type TensorMap } from '@open-autoglm/runtime';

/** Model inputs by name for one batch. */
export type FeedBatch = Readonly<TensorMap>;

export interface BatchNormRecalibrationReport {
  /** BatchNormalization nodes whose running statistics were re-estimated. */
  readonly layers: readonly string[];
  readonly batches: number;
  readonly samples: number;
}

interface StatisticOutputs {
  /** The BatchNormalization of `model` (matched by object: exported nodes may be unnamed). */
  readonly node: NodeProto;
  readonly meanInput: string;
  readonly varInput: string;
  readonly meanOutput: string;
  readonly varOutput: string;
  /** Elements per channel in one sample (the spatial size), for the unbiased variance. */
  readonly spatial: number;
}

/**
 * Re-estimates every BatchNormalization's running mean and variance on calibration data, the
 * training-free recovery after pruning (a pruned layer's inputs no longer have the statistics the
 * running averages were measured on). As PyTorch does with `momentum=None` in train mode, every
 * BatchNorm normalizes each batch with that batch's own statistics, computed inside the graph, and
 * the running values become the average over batches of the batch means and of the unbiased batch
 * variances. Updates `model` in place; a model without BatchNormalization is left unchanged.
 */
export async function recalibrateBatchNorm(model: OnnxModel, batches: AsyncIterable<FeedBatch> | Iterable<FeedBatch>): Promise<BatchNormRecalibrationReport> {
  const graph = model.graph;
  const batchNorms = graph.nodes.filter((n) => n.opType === 'BatchNormalization' && isDefaultDomain(n.domain) && n.input.length >= 5);
  if (batchNorms.length === 0) return { layers: [], batches: 0, samples: 0 };
  const statistics = model.clone();
  const statisticsGraph = statistics.graph;
  const { shapes } = inferShapes(model.proto);
  const opset = model.opsetVersion() ?? 17;
  const outputs: StatisticOutputs[] = [];
  // Pair the nodes before inserting anything: insertions shift positions.
  const pairs = batchNorms.map((original) => [original, statisticsGraph.nodes[graph.indexOfNode(original)]] as const);
  for (const [original, node] of pairs) {
    if (node === undefined) continue;
    const x = node.input[0] as string;
    const rank = shapes.get(x)?.dims?.length;
    if (rank === undefined) continue;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const spatial = (shapes.get(x)?.dims ?? []).slice(2).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
    const prefix = statisticsGraph.uniqueName(`${node.name || 'bn'}_recalibration`);
    const reduce = (input: string, output: string, keepDims: number): void => {
      if (opset >= 18) {
        const axesName = `${prefix}_axes`;
        if (statisticsGraph.getInitializer(axesName) === undefined) {
          statisticsGraph.setInitializer(arrayToTensor(axesName, BigInt64Array.from(axes.map(BigInt)), [axes.length]));
        }
        statisticsGraph.insertNodeBefore(node, makeNode('ReduceMean', [input, axesName], [output], { keepdims: keepDims }));
      } else {
        statisticsGraph.insertNodeBefore(node, makeNode('ReduceMean', [input], [output], { axes, keepdims: keepDims }));
      }
    };
    const names = {
      meanKept: `${prefix}_mean_kept`,
      centered: `${prefix}_centered`,
      squared: `${prefix}_squared`,
      mean: `${prefix}_mean`,
      variance: `${prefix}_variance`,
    };
    reduce(x, names.meanKept, 1);
    statisticsGraph.insertNodeBefore(node, makeNode('Sub', [x, names.meanKept], [names.centered]));
    statisticsGraph.insertNodeBefore(node, makeNode('Mul', [names.centered, names.centered], [names.squared]));
    reduce(x, names.mean, 0);
    reduce(names.squared, names.variance, 0);
    outputs.push({ node: original, meanInput: original.input[3] as string, varInput: original.input[4] as string, meanOutput: names.mean, varOutput: names.variance, spatial });
    // Normalize with the batch's own statistics, as in training, so later layers see the new distribution.
    statisticsGraph.setNodeInput(node, 3, names.mean);
    statisticsGraph.setNodeInput(node, 4, names.variance);
    statisticsGraph.addOutput(makeTensorValueInfo(names.mean, DataType.FLOAT));
    statisticsGraph.addOutput(makeTensorValueInfo(names.variance, DataType.FLOAT));
  }
  const session = await createSession(statistics.toBytes(), { device: 'cpu', threads: 1 }, { file: `${model.source ?? 'model'} (BatchNorm statistics)` });
  const sums = new Map(outputs.map((o) => [o, { mean: undefined as Float64Array | undefined, variance: undefined as Float64Array | undefined }]));
  let batchCount = 0;
  let samples = 0;
  for await (const feeds of batches) {
    const size = Object.values(feeds)[0]?.dims[0] ?? 0;
    if (size < 2) continue; // a one-sample batch has no variance
    const result = await session.run({ ...feeds }, outputs.flatMap((o) => [o.meanOutput, o.varOutput]));
    for (const o of outputs) {
      const mean = result[o.meanOutput]?.data as Float32Array;
      const variance = result[o.varOutput]?.data as Float32Array;
      const perChannel = size * o.spatial;
      const unbiased = perChannel > 1 ? perChannel / (perChannel - 1) : 1;
      const sum = sums.get(o) as { mean: Float64Array | undefined; variance: Float64Array | undefined };
      sum.mean ??= new Float64Array(mean.length);
      sum.variance ??= new Float64Array(variance.length);
      for (let c = 0; c < mean.length; c++) {
        sum.mean[c] = (sum.mean[c] as number) + (mean[c] as number);
        sum.variance[c] = (sum.variance[c] as number) + (variance[c] as number) * unbiased;
      }
    }
    batchCount++;
    samples += size;
  }
  if (batchCount === 0) {
    throw new DatasetError('Cannot re-estimate BatchNorm statistics: the calibration data has no batch of at least 2 samples. Give more calibration samples.');
  }
  const target = new OnnxGraph(graph.proto);
  for (const o of outputs) {
    const sum = sums.get(o) as { mean: Float64Array; variance: Float64Array };
    writeStatistic(target, o.node, 3, o.meanInput, Float32Array.from(sum.mean, (v) => v / batchCount));
    writeStatistic(target, o.node, 4, o.varInput, Float32Array.from(sum.variance, (v) => v / batchCount));
  }
  graph.invalidate();
  return { layers: outputs.map((o) => o.node.name), batches: batchCount, samples };
}

/** Writes a statistic into the BN's own initializer, or a new one when the tensor is shared. */
function writeStatistic(graph: OnnxGraph, node: NodeProto, slot: number, name: string, values: Float32Array): void {
  const shared = graph.consumersOf(name).length > 1 || graph.getInitializer(name) === undefined;
  const target = shared ? graph.uniqueName(`${name}_recalibrated`) : name;
  graph.setInitializer(arrayToTensor(target, values, [values.length]));
  if (shared) graph.setNodeInput(node, slot, target);
}

/**
 * Batches of model inputs from the first `samples` rows of a dataset: its single input array
 * feeds the model's single input (several arrays feed the inputs of the same names).
 */
export function* modelFeeds(data: Dataset, inputNames: readonly string[], batchSize: number, samples = data.size): Generator<FeedBatch> {
  const part = data.slice(0, Math.min(samples, data.size));
  const features =
    part.features.size === 1 && inputNames.length === 1 ? new Map([[inputNames[0] as string, part.features.values().next().value as NonNullable<ReturnType<Dataset['features']['get']>>]]) : part.features;
  for (const batch of new Dataset(features, undefined).batches(batchSize)) yield batch.features;
}
