import { ConfigError, UnsupportedOperationError } from '@open-autoglm/core';
import type { TensorArray } from '@open-autoglm/onnx';
import { Tensor } from 'onnxruntime-node';
import type { RuntimeSession, TensorMap, TensorSignature } from './session.js';

export interface SyntheticInputOptions {
  /** Value of the leading symbolic (batch) dimension; default 1. */
  batch?: number;
  /** Values for other symbolic dimensions by name (e.g. `{ sequence: 128 }`). */
  symbolicDims?: Readonly<Record<string, number>>;
}

/**
 * The concrete shape of an input: a symbolic first dimension becomes `batch`, other symbolic
 * dimensions come from `symbolicDims`. Throws ConfigError naming any dimension left unknown.
 */
export function concreteInputShape(
  input: TensorSignature,
  options: SyntheticInputOptions,
  modelLabel: string,
): number[] {
  const batch = options.batch ?? 1;
  return input.shape.map((dim, axis) => {
    if (typeof dim === 'number') return dim;
    const named = options.symbolicDims?.[dim];
    if (named !== undefined) return named;
    if (axis === 0) return batch;
    throw new ConfigError(
      `Input "${input.name}" of model ${modelLabel} has a symbolic dimension "${dim}" at axis ${axis} ` +
        `(shape [${input.shape.join(', ')}]). Give its size with symbolicDims: { "${dim}": <size> }.`,
    );
  });
}

/**
 * Fixed, deterministic inputs of the model's input shapes: floats in [0, 1), integers and bools
 * 0 or 1, so token ids, masks and gather indices are valid for any vocabulary.
 */
export function syntheticInputs(session: RuntimeSession, options: SyntheticInputOptions = {}): TensorMap {
  const feeds: TensorMap = {};
  for (const input of session.inputs) {
    const dims = concreteInputShape(input, options, session.modelLabel);
    const count = dims.reduce((a, b) => a * b, 1);
    feeds[input.name] = new Tensor(input.type, syntheticData(input, count, session.modelLabel), dims);
  }
  return feeds;
}

function syntheticData(input: TensorSignature, count: number, modelLabel: string): TensorArray {
  // A small linear congruential sequence: fixed across runs, cheap, not constant (constant inputs
  // can hit special fast paths and give unrepresentative timings).
  let state = 0x2545f491;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
  const bit = (): number => (next() < 0.5 ? 0 : 1);
  switch (input.type) {
    case 'float32':
      return Float32Array.from({ length: count }, next);
    case 'float64':
      return Float64Array.from({ length: count }, next);
    case 'int8':
      return Int8Array.from({ length: count }, bit);
    case 'uint8':
    case 'bool':
      return Uint8Array.from({ length: count }, bit);
    case 'int16':
      return Int16Array.from({ length: count }, bit);
    case 'uint16':
      return Uint16Array.from({ length: count }, bit);
    case 'int32':
      return Int32Array.from({ length: count }, bit);
    case 'uint32':
      return Uint32Array.from({ length: count }, bit);
    case 'int64':
      return BigInt64Array.from({ length: count }, () => BigInt(bit()));
    case 'uint64':
      return BigUint64Array.from({ length: count }, () => BigInt(bit()));
    default:
      throw new UnsupportedOperationError(
        `Input "${input.name}" of model ${modelLabel} has element type ${input.type}, for which no synthetic data ` +
          'can be made. Only numeric and bool inputs are supported; measure this model with real data.',
      );
  }
}
