import { ModelFormatError } from '@open-autoglm/core';
import { OnnxModel } from '../OnnxModel.js';
import type { ModelProto } from '../proto.js';
import { elementCount, tensorToArray } from '../tensor.js';
import { describeTrainingStep } from './TrainingStepSpec.js';

/** The value of one state tensor of a training step (float32, as fed to onnxruntime). */
export interface TrainingStateTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/**
 * The values to feed a training step built by `buildTrainingStep` before its first update, by
 * input name: every parameter and buffer at its initial value (kept in the step model as the
 * default of its input), every optimizer state tensor at zero. Feed `step` = 1 and the learning
 * rate besides, then the batch; after each run, replace these with the step's `updated` outputs.
 */
export function initialTrainingState(stepModel: OnnxModel | ModelProto): Map<string, TrainingStateTensor> {
  const proto = stepModel instanceof OnnxModel ? stepModel.proto : stepModel;
  const signature = describeTrainingStep(proto);
  const initializers = new Map((proto.graph?.initializer ?? []).map((t) => [t.name, t]));
  const state = new Map<string, TrainingStateTensor>();
  const fromInitializer = (name: string, dims: readonly number[]): void => {
    const tensor = initializers.get(name);
    const data = tensor === undefined ? undefined : tensorToArray(tensor);
    if (!(data instanceof Float32Array)) {
      throw new ModelFormatError(
        `The training step has no float32 initial value for "${name}" (its initializer is ${tensor === undefined ? 'missing' : 'not float32'}). ` +
          'Rebuild the step with buildTrainingStep.',
      );
    }
    state.set(name, { data, dims });
  };
  for (const parameter of signature.parameters) {
    fromInitializer(parameter.name, parameter.dims);
    for (const slot of parameter.state) state.set(slot.name, { data: new Float32Array(elementCount(slot.dims)), dims: slot.dims });
  }
  for (const buffer of signature.buffers) fromInitializer(buffer.name, buffer.dims);
  return state;
}
