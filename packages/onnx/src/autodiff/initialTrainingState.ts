import { ModelFormatError } from '@open-autoglm/core';
import { OnnxModel } from '../OnnxModel.js';
import type { ModelProto } from '../proto.js';
import { elementCount, tensorToArray } from '../tensor.js';
import type { TrainingStepSignature } from './TrainingStepSpec.js';

/** The value of one state tensor of a training step (float32, as fed to onnxruntime). */
export interface TrainingStateTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/**
 * The values to feed a training step before its first update, by input name: every parameter
 * and buffer at its value in `source` (the model the step was built from), every optimizer
 * state tensor at zero. Feed `step` = 1 and the learning rate besides, then the batch; after
 * each run, replace these with the step's `updated` outputs.
 */
export function initialTrainingState(source: OnnxModel | ModelProto, signature: TrainingStepSignature): Map<string, TrainingStateTensor> {
  const proto = source instanceof OnnxModel ? source.proto : source;
  const initializers = new Map((proto.graph?.initializer ?? []).map((t) => [t.name, t]));
  const state = new Map<string, TrainingStateTensor>();
  const fromInitializer = (input: string, initializer: string, dims: readonly number[]): void => {
    const tensor = initializers.get(initializer);
    const data = tensor === undefined ? undefined : tensorToArray(tensor);
    if (!(data instanceof Float32Array) || data.length !== elementCount(dims)) {
      throw new ModelFormatError(
        `The source model has no float32 initializer "${initializer}" of shape [${dims.join(', ')}] for training input "${input}". ` +
          'Pass the model the training step was built from.',
      );
    }
    state.set(input, { data, dims });
  };
  for (const parameter of signature.parameters) {
    fromInitializer(parameter.name, parameter.initializer, parameter.dims);
    for (const slot of parameter.state) state.set(slot.name, { data: new Float32Array(elementCount(slot.dims)), dims: slot.dims });
  }
  for (const buffer of signature.buffers) fromInitializer(buffer.name, buffer.name, buffer.dims);
  return state;
}
