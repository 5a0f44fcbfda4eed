import { ModelFormatError } from '@open-autoglm/core';
import { OnnxModel } from '../OnnxModel.js';
import type { ModelProto } from '../proto.js';
import { arrayToTensor, elementCount } from '../tensor.js';
import type { TrainingStepSignature } from './TrainingStepSpec.js';

/**
 * A copy of `source` (the inference model a training step was built from) with the trained
 * values written back: every parameter and buffer of `signature` (BatchNorm running statistics
 * trained in `train` mode) from `values`, by step input name. Parameters an exporter had
 * merged behind an Identity get initializers of their own, since they were trained apart.
 * Throws ModelFormatError when a value is missing or has the wrong size.
 */
export function writeTrainedParameters(
  source: OnnxModel | ModelProto,
  signature: TrainingStepSignature,
  values: ReadonlyMap<string, Float32Array>,
): OnnxModel {
  const model = (source instanceof OnnxModel ? source : new OnnxModel(source)).clone();
  const graph = model.graph;
  const write = (name: string, dims: readonly number[]): void => {
    const data = values.get(name);
    if (data === undefined || data.length !== elementCount(dims)) {
      throw new ModelFormatError(
        `No trained value of shape [${dims.join(', ')}] for "${name}"${data === undefined ? '' : ` (got ${data.length} values)`}. ` +
          'Pass the updated parameters and buffers of the last training step, by input name.',
      );
    }
    const producer = graph.producerOf(name);
    if (producer !== undefined) graph.removeNode(producer);
    graph.setInitializer(arrayToTensor(name, data, [...dims]));
  };
  for (const parameter of signature.parameters) write(parameter.name, parameter.dims);
  for (const buffer of signature.buffers) write(buffer.name, buffer.dims);
  return model;
}
