/** Where a dataset split lives: inputs `x` and, for labelled splits, targets `y` (absolute paths). */
export interface DatasetSource {
  readonly x: string;
  readonly y?: string;
}

/** The splits a config can name: fine-tuning, calibration, validation. */
export type DatasetSplit = 'train' | 'calib' | 'val';

/** Element types datasets carry (the ONNX tensor types `.npy` files map to). */
export type TensorElementType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

/** Host memory of one tensor, engine-free so that core does not depend on the runtime. */
export interface TensorData {
  readonly type: TensorElementType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
}

/** Consecutive samples: inputs and, for labelled splits, targets; axis 0 is the sample axis. */
export interface Batch {
  readonly x: TensorData;
  readonly y?: TensorData;
}

/** A loaded split. */
export interface Dataset {
  readonly source: DatasetSource;
  /** Number of samples (axis 0 of `x`). */
  readonly length: number;
  /** Samples `[start, start + count)`, clipped to the end of the dataset. */
  slice(start: number, count: number): Promise<Batch>;
}

/**
 * Reads dataset files of some format (`.npy`, `.npz`...). Several loaders can be registered;
 * the first whose `canLoad` accepts a source is used, so a plugin can add a format.
 */
export interface DatasetLoader {
  /** Short format name for messages (`npy`). */
  readonly format: string;
  canLoad(source: DatasetSource): boolean;
  load(source: DatasetSource): Promise<Dataset>;
}
