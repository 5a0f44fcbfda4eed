/**
 * Where a dataset split lives (absolute paths): the model's inputs `x` (one file, or one per
 * model input by name for models with several inputs) and, for labelled splits, labels `y`.
 */
export interface DatasetSource {
  readonly x: string | Readonly<Record<string, string>>;
  readonly y?: string;
}

/** The splits a config can name: fine-tuning, calibration, validation. */
export type DatasetSplit = 'train' | 'calib' | 'val';

/** Element types datasets carry (ONNX Runtime's names for them). */
export type TensorElementType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

/** Host memory of one tensor, engine-free so that core does not depend on the runtime. */
export interface TensorData {
  readonly type: TensorElementType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
}

/** Consecutive samples of a split; axis 0 of every tensor is the sample axis. */
export interface Batch {
  /** Index of the first sample in the dataset. */
  readonly start: number;
  /** Samples in the batch. */
  readonly size: number;
  /** Model inputs by input name (`x` when the split has a single input file). */
  readonly features: Readonly<Record<string, TensorData>>;
  readonly labels?: TensorData;
}

/** A loaded split. */
export interface Dataset {
  readonly source: DatasetSource;
  /** Number of samples. */
  readonly size: number;
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
