import { ConfigError, DatasetError } from '@open-autoglm/core';
import type { Dataset, DatasetBatch } from './dataset.js';
import type { RuntimeSession, TensorMap, TensorSignature } from './session.js';

/** Model input name -> dataset array name, for models with several inputs. */
export type InputMap = Readonly<Record<string, string>>;

export interface InferenceOptions {
  /** Samples per run; default 100. */
  batch?: number;
  /** Which dataset array feeds which model input; needed only when it cannot be inferred. */
  inputMap?: InputMap;
  /** Graph outputs to compute and copy back; default all. */
  outputNames?: readonly string[];
}

/** A dataset batch with the model's outputs for it. */
export interface InferenceBatch extends DatasetBatch {
  readonly outputs: TensorMap;
}

export const DEFAULT_BATCH = 100;

/** A model input with the dataset array that feeds it. */
export interface InputBinding {
  readonly input: TensorSignature;
  readonly feature: string;
}

/**
 * Decides which dataset array feeds each model input: the explicit map; else one array for a
 * one-input model; else arrays named like the inputs. Checks element types and fixed dimensions,
 * so mismatches fail here with the file named rather than deep inside onnxruntime.
 */
export function bindInputs(session: RuntimeSession, dataset: Dataset, inputMap?: InputMap): InputBinding[] {
  const featureNames = [...dataset.features.keys()];
  const inputs = session.inputs;
  let bindings: InputBinding[];
  if (inputMap !== undefined) {
    bindings = inputs.map((input) => {
      const feature = inputMap[input.name];
      if (feature === undefined) {
        throw new ConfigError(
          `inputMap does not say which dataset array feeds input "${input.name}" of model ${session.modelLabel}. ` +
            `Add "${input.name}": "<array>" (arrays: ${featureNames.join(', ')}).`,
        );
      }
      dataset.feature(feature);
      return { input, feature };
    });
    const unknown = Object.keys(inputMap).filter((name) => !inputs.some((i) => i.name === name));
    if (unknown.length > 0) {
      throw new ConfigError(
        `inputMap names ${unknown.map((n) => `"${n}"`).join(', ')}, which model ${session.modelLabel} does not have as inputs ` +
          `(its inputs: ${inputs.map((i) => i.name).join(', ')}). Fix the names.`,
      );
    }
  } else if (inputs.length === 1 && featureNames.length === 1) {
    bindings = [{ input: inputs[0] as TensorSignature, feature: featureNames[0] as string }];
  } else if (inputs.every((input) => dataset.features.has(input.name))) {
    bindings = inputs.map((input) => ({ input, feature: input.name }));
  } else {
    throw new ConfigError(
      `Model ${session.modelLabel} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}) and the dataset ` +
        `has ${featureNames.length} array(s) (${featureNames.join(', ')}), so which array feeds which input is ambiguous. ` +
        'Pass inputMap: { "<model input>": "<dataset array>", ... }, or name the arrays like the inputs.',
    );
  }
  for (const binding of bindings) checkBinding(session, dataset, binding);
  return bindings;
}

function checkBinding(session: RuntimeSession, dataset: Dataset, { input, feature }: InputBinding): void {
  const array = dataset.feature(feature);
  const where = `Dataset array ${feature}${array.file === undefined ? '' : ` (${array.file})`}`;
  if (array.dtype !== input.type) {
    throw new DatasetError(
      `${where} is ${array.dtype} but input "${input.name}" of model ${session.modelLabel} expects ${input.type}. ` +
        `Convert it before saving, e.g. numpy.save(path, array.astype(numpy.${input.type === 'bool' ? 'bool_' : input.type})).`,
      { file: array.file },
    );
  }
  const sample = array.shape.slice(1);
  const expected = input.shape.slice(1);
  const fits =
    sample.length === expected.length && expected.every((dim, axis) => typeof dim === 'string' || dim === sample[axis]);
  if (!fits) {
    throw new DatasetError(
      `${where} has samples of shape [${sample.join(', ')}] but input "${input.name}" of model ${session.modelLabel} ` +
        `takes [${input.shape.join(', ')}] (first axis = batch). Reshape the data to the model's input shape.`,
      { file: array.file },
    );
  }
}

/**
 * Runs a session over a dataset batch by batch. Only one batch's inputs (views, not copies) and
 * outputs are alive at a time, so memory does not grow with the dataset.
 */
export async function* inferBatches(
  session: RuntimeSession,
  dataset: Dataset,
  options: InferenceOptions = {},
): AsyncGenerator<InferenceBatch> {
  const batch = options.batch ?? DEFAULT_BATCH;
  const bindings = bindInputs(session, dataset, options.inputMap);
  checkFixedBatch(session, dataset, bindings, batch);
  for (const part of dataset.batches(batch)) {
    const feeds: TensorMap = {};
    for (const { input, feature } of bindings) feeds[input.name] = part.features[feature] as TensorMap[string];
    const outputs = await session.run(feeds, options.outputNames);
    yield { ...part, outputs };
  }
}

function checkFixedBatch(session: RuntimeSession, dataset: Dataset, bindings: InputBinding[], batch: number): void {
  for (const { input } of bindings) {
    const fixed = input.shape[0];
    if (typeof fixed === 'number' && (batch !== fixed || dataset.size % fixed !== 0)) {
      throw new ConfigError(
        `Input "${input.name}" of model ${session.modelLabel} has a fixed batch size of ${fixed}, but batches of ${batch} ` +
          `over ${dataset.size} samples were asked for. Use batch ${fixed} with a sample count divisible by it, ` +
          'or re-export the model with a dynamic batch axis.',
      );
    }
  }
}
