import { isDeepStrictEqual } from 'node:util';
import { ModelFormatError } from '@open-autoglm/core';
import { arrayToTensor, type OnnxModel, type TensorArray, tensorDims } from '@open-autoglm/onnx';

/** A trained value: its elements and dims. */
export interface TrainedTensor {
  readonly data: TensorArray;
  readonly dims: readonly number[];
}

/**
 * The trained inference model: a copy of `model` (its forward graph unchanged) whose
 * initializers named in `trained` hold the trained values, e.g. the parameters and the
 * BatchNormalization running statistics a training step updated. Every trained tensor must
 * replace an initializer of the same name, shape and element type (ModelFormatError otherwise),
 * so a step built from another model is caught. The values are copied: later updates of the
 * arrays do not reach the model.
 */
export function exportTrainedModel(model: OnnxModel, trained: ReadonlyMap<string, TrainedTensor>): OnnxModel {
  const copy = model.clone();
  const graph = copy.graph;
  for (const [name, value] of trained) {
    const original = graph.getInitializer(name);
    const where = model.source === undefined ? 'the model' : `model ${model.source}`;
    if (original === undefined) {
      throw new ModelFormatError(
        `Cannot write the trained value of "${name}" into ${where}: it has no initializer of that name. ` +
          'Export with the model the training step was built from.',
        { file: model.source },
      );
    }
    const dims = tensorDims(original);
    const replacement = arrayToTensor(name, value.data, value.dims);
    if (!isDeepStrictEqual(dims, [...value.dims]) || replacement.dataType !== original.dataType) {
      throw new ModelFormatError(
        `Cannot write the trained value of "${name}" into ${where}: the initializer is [${dims.join(', ')}] ` +
          `(type ${original.dataType}) but the trained value is [${value.dims.join(', ')}] (type ${replacement.dataType}). ` +
          'Export with the model the training step was built from.',
        { file: model.source },
      );
    }
    graph.setInitializer(replacement);
  }
  return copy;
}
