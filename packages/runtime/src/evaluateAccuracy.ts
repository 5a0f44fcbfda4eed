import { DatasetError } from '@open-autoglm/core';
import type { NpyArray } from './npy.js';
import type { Dataset } from './dataset.js';
import { type InferenceOptions, inferBatches } from './inferBatches.js';
import { argMaxRow, chooseOutput, outputRows } from './outputRows.js';
import type { RuntimeSession } from './session.js';

export interface AccuracyOptions extends Omit<InferenceOptions, 'outputNames'> {
  /** The output holding class scores; default the model's first output. */
  output?: string;
}

export interface AccuracyResult {
  /** correct / samples, in [0, 1]. */
  readonly accuracy: number;
  readonly samples: number;
  readonly correct: number;
}

const INTEGER_DTYPES: ReadonlySet<string> = new Set([
  'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
]);

/**
 * Top-1 accuracy: the arg-max of the scores output for each sample against its integer class label.
 */
export async function evaluateAccuracy(
  session: RuntimeSession,
  dataset: Dataset,
  options: AccuracyOptions = {},
): Promise<AccuracyResult> {
  dataset.requireSamples('measure accuracy');
  const labels = checkLabels(dataset);
  const output = chooseOutput(session, options.output);
  let correct = 0;
  for await (const part of inferBatches(session, dataset, { ...options, outputNames: [output] })) {
    const rows = outputRows(session, part.outputs, output, part.size);
    const batchLabels = part.labels as NonNullable<typeof part.labels>;
    for (let i = 0; i < part.size; i++) {
      const label = Number(batchLabels[i]);
      if (label < 0 || label >= rows.rowSize) {
        throw new DatasetError(
          `Label ${label} of sample ${part.start + i} in ${labelName(labels)} is not a class of model ${session.modelLabel}, ` +
            `whose output "${output}" scores ${rows.rowSize} classes (0..${rows.rowSize - 1}). ` +
            'Check that the labels belong to this model and dataset.',
          { file: labels.file },
        );
      }
      if (argMaxRow(rows, i) === label) correct++;
    }
  }
  return { accuracy: correct / dataset.size, samples: dataset.size, correct };
}

function checkLabels(dataset: Dataset): NpyArray {
  const labels = dataset.labels;
  if (labels === undefined) {
    throw new DatasetError(
      'The dataset has no labels, so accuracy cannot be measured. Give y (a .npy of class ids), ' +
        'or compare against a reference model with compareOutputs.',
    );
  }
  if (!INTEGER_DTYPES.has(labels.dtype)) {
    throw new DatasetError(
      `${labelName(labels)} holds ${labels.dtype} values; accuracy needs integer class ids. ` +
        'Save them as integers, e.g. numpy.save(path, y.astype(numpy.int64)).',
      { file: labels.file },
    );
  }
  if (labels.shape.slice(1).some((d) => d !== 1)) {
    throw new DatasetError(
      `${labelName(labels)} has shape [${labels.shape.join(', ')}]; accuracy needs one class id per sample ([N]). ` +
        'For one-hot labels save y.argmax(axis=1).',
      { file: labels.file },
    );
  }
  return labels;
}

function labelName(labels: NpyArray): string {
  return labels.file === undefined ? 'the labels' : `labels ${labels.file}`;
}
