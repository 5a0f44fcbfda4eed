import { ConfigError, DatasetError } from '@open-autoglm/core';
import type { TensorArray } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import type { NpyArray } from './npy.js';
import { readArray } from './readArray.js';

/** An array given as a path (`x.npy`, or `set.npz:member`) or as an array already read. */
export type ArraySource = string | NpyArray;

export interface DatasetSources {
  /**
   * Model inputs: one array (named `x`), or several by name when the model has several inputs
   * (e.g. `{ input_ids: 'ids.npy', attention_mask: 'mask.npy' }`). Rows are samples.
   */
  x: ArraySource | Readonly<Record<string, ArraySource>>;
  /** Labels, one row per sample (class ids for accuracy). */
  y?: ArraySource;
}

/** One batch of consecutive samples. Every array is a view on the dataset: nothing is copied. */
export interface DatasetBatch {
  /** Index of the batch's first sample in the dataset. */
  readonly start: number;
  /** Samples in the batch (the last batch may be smaller than the batch size). */
  readonly size: number;
  /** onnxruntime tensors of the batch by feature name, with dims `[size, ...sampleShape]`. */
  readonly features: Readonly<Record<string, Tensor>>;
  /** The labels of the batch, or undefined without labels. */
  readonly labels: TensorArray | undefined;
}

/** The name of the single feature when `x` is given as one array. */
export const DEFAULT_FEATURE = 'x';

/** Samples (one or more input arrays) with optional labels, all holding the same number of rows. */
export class Dataset {
  /** Number of samples. */
  readonly size: number;

  /** Prefer `loadDataset`; this checks that every array has the same number of rows. */
  constructor(
    readonly features: ReadonlyMap<string, NpyArray>,
    readonly labels: NpyArray | undefined,
  ) {
    const first = features.entries().next().value;
    if (first === undefined) throw new ConfigError('A dataset needs at least one input array (x).');
    const [firstName, firstArray] = first;
    for (const [name, array] of [...features, ...(labels === undefined ? [] : [['y', labels] as const])]) {
      if (array.shape.length === 0) {
        throw new DatasetError(
          `${describe(name, array)} is a scalar; a dataset array needs one row per sample (shape [N, ...]). ` +
            'Save the samples stacked along the first axis.',
          { file: array.file },
        );
      }
      const count = array.shape.reduce((a, b) => a * b, 1);
      if (array.data.length !== count) {
        throw new DatasetError(
          `${describe(name, array)} holds ${array.data.length} values but its shape [${array.shape.join(', ')}] needs ${count}. ` +
            'Build the array with data matching its shape.',
          { file: array.file },
        );
      }
      if (array.shape[0] !== firstArray.shape[0]) {
        throw new DatasetError(
          `${describe(firstName, firstArray)} has ${String(firstArray.shape[0])} samples but ` +
            `${describe(name, array)} has ${String(array.shape[0])}. ` +
            'Every array of a dataset must hold the same samples in the same order; re-export them together.',
          { file: array.file },
        );
      }
    }
    this.size = firstArray.shape[0] as number;
  }

  /** Shape of one sample of a feature (its shape without the leading sample axis). */
  sampleShape(feature: string = DEFAULT_FEATURE): readonly number[] {
    return this.feature(feature).shape.slice(1);
  }

  /** A feature by name; ConfigError listing the names when absent. */
  feature(name: string): NpyArray {
    const array = this.features.get(name);
    if (array === undefined) {
      throw new ConfigError(
        `The dataset has no input array "${name}"; it has: ${[...this.features.keys()].join(', ')}.`,
      );
    }
    return array;
  }

  /** DatasetError when there are no samples: a statistic over nothing would be meaningless. */
  requireSamples(purpose: string): void {
    if (this.size > 0) return;
    const files = [...this.features.values()].map((a) => a.file).filter((f) => f !== undefined);
    throw new DatasetError(
      `Cannot ${purpose}: the dataset${files.length > 0 ? ` (${files.join(', ')})` : ''} has no samples. Give data with at least one row.`,
      { file: files[0] },
    );
  }

  /** Samples [start, end) as a new dataset sharing this one's memory. */
  slice(start: number, end: number = this.size): Dataset {
    const from = Math.max(0, Math.min(start, this.size));
    const to = Math.max(from, Math.min(end, this.size));
    const features = new Map([...this.features].map(([name, array]) => [name, sliceRows(array, from, to)] as const));
    return new Dataset(features, this.labels === undefined ? undefined : sliceRows(this.labels, from, to));
  }

  /** Consecutive batches of `batchSize` samples, the last one partial. */
  *batches(batchSize: number): Generator<DatasetBatch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ConfigError(`Batch size must be a whole number >= 1, got ${String(batchSize)}.`);
    }
    for (let start = 0; start < this.size; start += batchSize) {
      const size = Math.min(batchSize, this.size - start);
      const features: Record<string, Tensor> = {};
      for (const [name, array] of this.features) {
        const rows = sliceRows(array, start, start + size);
        features[name] = new Tensor(rows.dtype, rows.data, rows.shape);
      }
      const labels = this.labels === undefined ? undefined : sliceRows(this.labels, start, start + size).data;
      yield { start, size, features, labels };
    }
  }
}

/** Rows [start, end) of an array as a view (typed-array subarray, no copy). */
function sliceRows(array: NpyArray, start: number, end: number): NpyArray {
  const rowSize = array.shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    dtype: array.dtype,
    shape: [end - start, ...array.shape.slice(1)],
    data: array.data.subarray(start * rowSize, end * rowSize),
    file: array.file,
  };
}

function describe(name: string, array: NpyArray): string {
  return array.file === undefined ? name : `${name} (${array.file})`;
}

/**
 * Reads the arrays of a dataset and checks that they hold the same number of samples
 * (DatasetError naming both files and both counts otherwise).
 */
export async function loadDataset(sources: DatasetSources): Promise<Dataset> {
  const named: Array<[string, ArraySource]> = isSingleSource(sources.x)
    ? [[DEFAULT_FEATURE, sources.x]]
    : Object.entries(sources.x);
  const features = new Map<string, NpyArray>();
  for (const [name, source] of named) features.set(name, await resolveArray(source, name));
  const labels = sources.y === undefined ? undefined : await resolveArray(sources.y, 'y');
  return new Dataset(features, labels);
}

function isSingleSource(x: DatasetSources['x']): x is ArraySource {
  return typeof x === 'string' || ('dtype' in x && 'shape' in x && 'data' in x && ArrayBuffer.isView(x.data));
}

async function resolveArray(source: ArraySource, defaultMember: string): Promise<NpyArray> {
  return typeof source === 'string' ? readArray(source, { defaultMember }) : source;
}
