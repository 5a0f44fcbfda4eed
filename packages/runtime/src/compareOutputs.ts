import { ConfigError } from '@open-autoglm/core';
import type { Dataset } from './dataset.js';
import { type InferenceOptions, type InputMap, inferBatches } from './inferBatches.js';
import { argMaxRow, chooseOutput, outputRows } from './outputRows.js';
import type { RuntimeSession } from './session.js';

export interface CompareOutputsOptions extends Omit<InferenceOptions, 'outputNames'> {
  /** Input map for model B when its input names differ from A's; default `inputMap`. */
  inputMapB?: InputMap;
  /** Output compared (same name in both); default each model's first output. */
  output?: string;
  /**
   * Smallest |a| used as the denominator of the relative error, so values of A near zero do not
   * make it explode; default 1e-6.
   */
  relativeErrorFloor?: number;
}

/** How closely model B reproduces model A's output (A is the reference). */
export interface OutputComparison {
  readonly samples: number;
  /** Output elements compared. */
  readonly elements: number;
  /** Share of samples whose arg-max (top-1 class) is the same in both, in [0, 1]. */
  readonly agreement: number;
  /** max |a - b| over all elements (NaN when either model produced NaN). */
  readonly maxAbsError: number;
  /** mean |a - b| over all elements. */
  readonly meanAbsError: number;
  /** max |a - b| / max(|a|, relativeErrorFloor). */
  readonly maxRelError: number;
}

/**
 * Runs two models on the same samples and measures how far B's output is from A's: top-1
 * agreement and absolute / relative errors. For checking a compressed model without labels.
 */
export async function compareOutputs(
  sessionA: RuntimeSession,
  sessionB: RuntimeSession,
  dataset: Dataset,
  options: CompareOutputsOptions = {},
): Promise<OutputComparison> {
  dataset.requireSamples('compare outputs');
  const floor = options.relativeErrorFloor ?? 1e-6;
  const outputA = chooseOutput(sessionA, options.output);
  const outputB = chooseOutput(sessionB, options.output);
  const runA = inferBatches(sessionA, dataset, { ...options, outputNames: [outputA] });
  const runB = inferBatches(sessionB, dataset, {
    ...options,
    inputMap: options.inputMapB ?? options.inputMap,
    outputNames: [outputB],
  });
  let agree = 0;
  let elements = 0;
  let maxAbs = 0;
  let sumAbs = 0;
  let maxRel = 0;
  for (;;) {
    const [a, b] = [await runA.next(), await runB.next()];
    if (a.done === true || b.done === true) break;
    const rowsA = outputRows(sessionA, a.value.outputs, outputA, a.value.size);
    const rowsB = outputRows(sessionB, b.value.outputs, outputB, b.value.size);
    if (rowsA.rowSize !== rowsB.rowSize) {
      throw new ConfigError(
        `Cannot compare output "${outputA}" of model ${sessionA.modelLabel} (${rowsA.rowSize} values per sample) with ` +
          `output "${outputB}" of model ${sessionB.modelLabel} (${rowsB.rowSize} values per sample). ` +
          'Compare models with the same output signature, or choose matching outputs with the output option.',
      );
    }
    const count = rowsA.rows * rowsA.rowSize;
    for (let i = 0; i < count; i++) {
      const va = rowsA.at(i);
      const diff = Math.abs(va - rowsB.at(i));
      // Math.max propagates NaN, so a NaN anywhere stays visible in the result.
      maxAbs = Math.max(maxAbs, diff);
      maxRel = Math.max(maxRel, diff / Math.max(Math.abs(va), floor));
      sumAbs += diff;
    }
    for (let row = 0; row < rowsA.rows; row++) if (argMaxRow(rowsA, row) === argMaxRow(rowsB, row)) agree++;
    elements += count;
  }
  return {
    samples: dataset.size,
    elements,
    agreement: agree / dataset.size,
    maxAbsError: maxAbs,
    meanAbsError: elements === 0 ? 0 : sumAbs / elements,
    maxRelError: maxRel,
  };
}
