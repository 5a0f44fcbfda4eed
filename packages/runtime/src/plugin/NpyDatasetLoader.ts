import {
  type Batch,
  DatasetError,
  type DatasetLoader,
  type DatasetSource,
  type Dataset as SplitDataset,
  type TensorData,
  type TensorElementType,
} from '@open-autoglm/core';
import { type Dataset, loadDataset } from '../dataset.js';
import type { NpyArray } from '../npy.js';

const coreElementTypes: ReadonlySet<string> = new Set<TensorElementType>(['float32', 'float64', 'int8', 'uint8', 'int32', 'int64', 'bool']);

/**
 * A split read from `.npy` / `.npz` files, as core sees datasets. Engine code that runs models
 * takes `arrays` directly (onnxruntime tensors are views on them: nothing is copied).
 */
export class NpyDatasetSplit implements SplitDataset {
  readonly size: number;

  constructor(
    readonly source: DatasetSource,
    readonly arrays: Dataset,
  ) {
    this.size = arrays.size;
  }

  async slice(start: number, count: number): Promise<Batch> {
    const end = Math.min(this.size, start + count);
    const part = this.arrays.slice(start, end);
    const features: Record<string, TensorData> = {};
    for (const [name, array] of part.features) features[name] = tensorData(array);
    return {
      start,
      size: part.size,
      features,
      ...(part.labels === undefined ? {} : { labels: tensorData(part.labels) }),
    };
  }
}

function tensorData(array: NpyArray): TensorData {
  if (!coreElementTypes.has(array.dtype)) {
    throw new DatasetError(
      `${array.file ?? 'A dataset array'} holds ${array.dtype} elements, which datasets cannot carry across plugins ` +
        `(supported: ${[...coreElementTypes].join(', ')}). Save the array as float32 or int64.`,
      array.file === undefined ? {} : { file: array.file },
    );
  }
  return { type: array.dtype as TensorElementType, dims: array.shape, data: array.data as TensorData['data'] };
}

/** Reads the splits a config names from `.npy` files (or `.npz` members, `set.npz:x`). */
export const npyDatasetLoader: DatasetLoader = {
  format: 'npy',
  canLoad(source) {
    const files = typeof source.x === 'string' ? [source.x] : Object.values(source.x);
    return [...files, ...(source.y === undefined ? [] : [source.y])].every((file) => /\.np[yz](:[^/\\]+)?$/i.test(file));
  },
  async load(source) {
    const arrays = await loadDataset(source.y === undefined ? { x: source.x } : { x: source.x, y: source.y });
    return new NpyDatasetSplit(source, arrays);
  },
};

/** The engine's view of a split: the arrays themselves when this loader read it, else read again from its files. */
export async function arraysOf(dataset: SplitDataset): Promise<Dataset> {
  if (dataset instanceof NpyDatasetSplit) return dataset.arrays;
  const { source } = dataset;
  return loadDataset(source.y === undefined ? { x: source.x } : { x: source.x, y: source.y });
}
