import { DatasetError } from '@open-autoglm/core';
import { arrayToTensor, buildTrainingStep, DataType, initialTrainingState, type OnnxModel } from '@open-autoglm/onnx';
import { createSession, Dataset } from '@open-autoglm/runtime';
import type { ParameterGradients } from './computeImportance.js';

export interface GradientOptions {
  /** Samples per run; default 64. */
  readonly batchSize?: number;
  /** Samples used at most (the first ones); default all. */
  readonly samples?: number;
}

/**
 * The gradient of the mean cross-entropy loss with respect to each of `parameters`
 * (initializer names) over `data` (its single input array and int64 labels): what the Taylor
 * criterion multiplies with the weights. Each batch's gradient (of its mean loss) is weighted by
 * the batch's samples, so a short last batch counts per sample, as one pass over all the samples
 * at once would. It runs a training step built by
 * `buildTrainingStep` in eval mode (BatchNorm with its running statistics, as the pruned model
 * will run) whose parameters, step number and learning rate are baked in as constants, so only
 * the batch is fed and nothing is updated.
 */
export async function computeParameterGradients(
  model: OnnxModel,
  parameters: readonly string[],
  data: Dataset,
  options: GradientOptions = {},
): Promise<ParameterGradients> {
  if (data.labels === undefined) {
    throw new DatasetError('The taylor criterion needs class labels with the calibration data (a y array); give them, or choose l1, l2, fpgm, bn or random.');
  }
  const step = buildTrainingStep(model, { trainable: parameters, mode: 'eval', loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, exposeGradients: true });
  const { signature } = step;
  const graph = step.model.graph;
  for (const [name, value] of initialTrainingState(model, signature)) {
    graph.removeInput(name);
    graph.setInitializer(arrayToTensor(name, value.data, [...value.dims]));
  }
  graph.removeInput(signature.step);
  graph.setInitializer(arrayToTensor(signature.step, BigInt64Array.from([1n]), [], DataType.INT64));
  graph.removeInput(signature.learningRate);
  graph.setInitializer(arrayToTensor(signature.learningRate, Float32Array.from([0]), []));
  const labelsInput = signature.labels?.name as string;
  const modelInputs = signature.batchInputs.map((input) => input.name);
  if (modelInputs.length !== 1 || data.features.size !== 1) {
    throw new DatasetError(`The taylor criterion supports models with one input and data with one input array; this model has ${modelInputs.length} input(s).`);
  }
  const samples = Math.min(options.samples ?? data.size, data.size);
  const feeds = new Dataset(new Map([[modelInputs[0] as string, data.slice(0, samples).features.values().next().value as NonNullable<ReturnType<Dataset['features']['get']>>], [labelsInput, data.slice(0, samples).labels as NonNullable<Dataset['labels']>]]), undefined);
  const session = await createSession(step.model.toBytes(), { device: 'cpu', threads: 1 }, { file: `${model.source ?? 'model'} (gradients)` });
  const wanted = signature.parameters.filter((p) => p.gradient !== undefined);
  const sums = new Map<string, Float64Array>();
  let count = 0;
  for (const batch of feeds.batches(options.batchSize ?? 64)) {
    const weight = batch.size;
    const result = await session.run({ ...batch.features }, wanted.map((p) => p.gradient as string));
    for (const parameter of wanted) {
      const gradient = result[parameter.gradient as string]?.data as Float32Array;
      const sum = sums.get(parameter.initializer) ?? new Float64Array(gradient.length);
      for (let i = 0; i < gradient.length; i++) sum[i] = (sum[i] as number) + (gradient[i] as number) * weight;
      sums.set(parameter.initializer, sum);
    }
    count += weight;
  }
  if (count === 0) throw new DatasetError('Cannot compute Taylor importance: the calibration data has no samples. Give labelled calibration data.');
  return new Map([...sums].map(([name, sum]) => [name, Float32Array.from(sum, (v) => v / count)]));
}
