import { ConfigError, UnsupportedOperationError } from '@open-autoglm/core';
import type { Tensor } from 'onnxruntime-node';
import type { RuntimeSession, TensorMap } from './session.js';

const SCORE_TYPES: ReadonlySet<string> = new Set([
  'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
]);

/** A model output viewed as one row of values per sample. */
export interface OutputRows {
  readonly rows: number;
  readonly rowSize: number;
  /** Element `i` (row-major) as a number. */
  readonly at: (i: number) => number;
}

/** The name of the output to score: the given one (checked) or the model's first. */
export function chooseOutput(session: RuntimeSession, output: string | undefined): string {
  if (output === undefined) return session.outputNames[0] as string;
  if (!session.outputNames.includes(output)) {
    throw new ConfigError(
      `Model ${session.modelLabel} has no output "${output}"; its outputs are: ${session.outputNames.join(', ')}.`,
    );
  }
  return output;
}

/** Reads output `name` of a batch result as `batchSize` rows. */
export function outputRows(session: RuntimeSession, outputs: TensorMap, name: string, batchSize: number): OutputRows {
  const tensor = outputs[name] as Tensor;
  if (!SCORE_TYPES.has(tensor.type)) {
    throw new UnsupportedOperationError(
      `Output "${name}" of model ${session.modelLabel} is ${tensor.type}; scores must be float32, float64 or integers. ` +
        'Add a Cast to float32 at the end of the model.',
    );
  }
  if (tensor.dims[0] !== batchSize) {
    throw new UnsupportedOperationError(
      `Output "${name}" of model ${session.modelLabel} has shape [${tensor.dims.join(', ')}] for a batch of ${batchSize}; ` +
        'its first axis must be the batch (one row of scores per sample).',
    );
  }
  const data = tensor.data as ArrayLike<number> | BigInt64Array | BigUint64Array;
  const at =
    data instanceof BigInt64Array || data instanceof BigUint64Array
      ? (i: number): number => Number(data[i])
      : (i: number): number => (data as ArrayLike<number>)[i] as number;
  return { rows: batchSize, rowSize: batchSize === 0 ? 0 : tensor.size / batchSize, at };
}

/** Index of the largest value of a row (the first on ties; NaN never wins over a number). */
export function argMaxRow(rows: OutputRows, row: number): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < rows.rowSize; j++) {
    const value = rows.at(row * rows.rowSize + j);
    if (value > bestValue) {
      bestValue = value;
      best = j;
    }
  }
  return best;
}
