import { create } from '@bufbuild/protobuf';
import { UnsupportedOperationError } from '@open-autoglm/core';
import { DataLocation, DataType, type TensorProto, TensorProtoSchema } from './proto.js';

/** Typed arrays that carry tensor data in JavaScript. int64/uint64 are exact (bigint). */
export type TensorArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Element data types that have a typed-array representation here. */
export type NumericDataType =
  | DataType.FLOAT
  | DataType.DOUBLE
  | DataType.INT8
  | DataType.UINT8
  | DataType.INT16
  | DataType.UINT16
  | DataType.INT32
  | DataType.UINT32
  | DataType.INT64
  | DataType.UINT64
  | DataType.BOOL;

interface DataTypeInfo {
  readonly name: string;
  readonly bytes: number;
  readonly create: (buffer: ArrayBuffer, byteOffset: number, length: number) => TensorArray;
}

const DATA_TYPES: ReadonlyMap<DataType, DataTypeInfo> = new Map<DataType, DataTypeInfo>([
  [DataType.FLOAT, { name: 'float32', bytes: 4, create: (b, o, n) => new Float32Array(b, o, n) }],
  [DataType.DOUBLE, { name: 'float64', bytes: 8, create: (b, o, n) => new Float64Array(b, o, n) }],
  [DataType.INT8, { name: 'int8', bytes: 1, create: (b, o, n) => new Int8Array(b, o, n) }],
  [DataType.UINT8, { name: 'uint8', bytes: 1, create: (b, o, n) => new Uint8Array(b, o, n) }],
  [DataType.BOOL, { name: 'bool', bytes: 1, create: (b, o, n) => new Uint8Array(b, o, n) }],
  [DataType.INT16, { name: 'int16', bytes: 2, create: (b, o, n) => new Int16Array(b, o, n) }],
  [DataType.UINT16, { name: 'uint16', bytes: 2, create: (b, o, n) => new Uint16Array(b, o, n) }],
  [DataType.INT32, { name: 'int32', bytes: 4, create: (b, o, n) => new Int32Array(b, o, n) }],
  [DataType.UINT32, { name: 'uint32', bytes: 4, create: (b, o, n) => new Uint32Array(b, o, n) }],
  [DataType.INT64, { name: 'int64', bytes: 8, create: (b, o, n) => new BigInt64Array(b, o, n) }],
  [DataType.UINT64, { name: 'uint64', bytes: 8, create: (b, o, n) => new BigUint64Array(b, o, n) }],
  [DataType.FLOAT16, { name: 'float16', bytes: 2, create: (b, o, n) => new Uint16Array(b, o, n) }],
  [DataType.BFLOAT16, { name: 'bfloat16', bytes: 2, create: (b, o, n) => new Uint16Array(b, o, n) }],
]);

/** The short, onnxruntime-style name of a data type (`float32`, `int64`, ...). */
export function dataTypeName(dataType: DataType): string {
  return DATA_TYPES.get(dataType)?.name ?? DataType[dataType]?.toLowerCase() ?? `type#${dataType}`;
}

/** Size of one element in bytes, or undefined for types without a fixed byte size (string, 4-bit). */
export function dataTypeByteSize(dataType: DataType): number | undefined {
  return DATA_TYPES.get(dataType)?.bytes;
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly (number | bigint)[]): number {
  let count = 1;
  for (const d of dims) count *= Number(d);
  return count;
}

/** The dims of a tensor as plain numbers (ONNX stores them as int64). */
export function tensorDims(tensor: TensorProto): number[] {
  return tensor.dims.map(Number);
}

/**
 * The data of an in-memory tensor as a typed array. For `raw_data` the array is a copy aligned
 * to its element size (protobuf gives an unaligned view into the file); the typed fields
 * (`float_data`, `int64_data`, ...) are converted. float16/bfloat16 come back as raw Uint16 bits.
 * External data must have been loaded first (see `loadExternalData`).
 */
export function tensorToArray(tensor: TensorProto): TensorArray {
  const info = DATA_TYPES.get(tensor.dataType);
  if (info === undefined) {
    throw new UnsupportedOperationError(
      `Tensor "${tensor.name}" has data type ${dataTypeName(tensor.dataType)}, which has no numeric array form here. ` +
        'Only float, double, (u)int8/16/32/64, bool, float16 and bfloat16 tensors can be read.',
    );
  }
  if (tensor.dataLocation === DataLocation.EXTERNAL) {
    throw new UnsupportedOperationError(
      `Tensor "${tensor.name}" keeps its data in an external file that was not loaded. ` +
        'Load the model with loadModel(path) so external data is read from the model folder.',
    );
  }
  const count = elementCount(tensor.dims);
  if (tensor.rawData.length > 0) {
    if (tensor.rawData.length !== count * info.bytes) {
      throw new UnsupportedOperationError(
        `Tensor "${tensor.name}" has ${tensor.rawData.length} bytes of raw data but its shape [${tensorDims(tensor).join(', ')}] ` +
          `needs ${count * info.bytes}. The model file is corrupt; re-export it.`,
      );
    }
    const copy = new ArrayBuffer(tensor.rawData.length);
    new Uint8Array(copy).set(tensor.rawData);
    return info.create(copy, 0, count);
  }
  const out = info.create(new ArrayBuffer(count * info.bytes), 0, count);
  const source = typedFieldOf(tensor);
  if (source.length !== count && !(count === 0 && source.length === 0)) {
    throw new UnsupportedOperationError(
      `Tensor "${tensor.name}" holds ${source.length} values but its shape [${tensorDims(tensor).join(', ')}] needs ${count}. ` +
        'The model file is corrupt; re-export it.',
    );
  }
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < count; i++) out[i] = BigInt(source[i] as number | bigint);
  } else if (tensor.dataType === DataType.FLOAT16 || tensor.dataType === DataType.BFLOAT16) {
    // float16 values live in int32_data as their raw 16-bit patterns.
    for (let i = 0; i < count; i++) out[i] = Number(source[i]) & 0xffff;
  } else {
    for (let i = 0; i < count; i++) out[i] = Number(source[i]);
  }
  return out;
}

function typedFieldOf(tensor: TensorProto): readonly (number | bigint)[] {
  switch (tensor.dataType) {
    case DataType.FLOAT:
      return tensor.floatData;
    case DataType.DOUBLE:
      return tensor.doubleData;
    case DataType.INT64:
      return tensor.int64Data;
    case DataType.UINT64:
    case DataType.UINT32:
      return tensor.uint64Data;
    default:
      // int8/uint8/int16/uint16/int32/bool/float16/bfloat16 are all stored in int32_data.
      return tensor.int32Data;
  }
}

const DATA_TYPE_OF_ARRAY: ReadonlyArray<[new (n: number) => TensorArray, DataType]> = [
  [Float32Array, DataType.FLOAT],
  [Float64Array, DataType.DOUBLE],
  [Int8Array, DataType.INT8],
  [Uint8Array, DataType.UINT8],
  [Int16Array, DataType.INT16],
  [Uint16Array, DataType.UINT16],
  [Int32Array, DataType.INT32],
  [Uint32Array, DataType.UINT32],
  [BigInt64Array, DataType.INT64],
  [BigUint64Array, DataType.UINT64],
];

/** The ONNX data type matching a typed array's class (Uint8Array maps to UINT8; pass BOOL explicitly). */
export function dataTypeOfArray(data: TensorArray): DataType {
  for (const [ctor, type] of DATA_TYPE_OF_ARRAY) if (data instanceof ctor) return type;
  throw new UnsupportedOperationError(`No ONNX data type for ${Object.prototype.toString.call(data)}.`);
}

/**
 * A new in-memory tensor stored as little-endian `raw_data` (the compact form exporters use).
 * `dataType` defaults to the type matching the array's class.
 */
export function arrayToTensor(
  name: string,
  data: TensorArray,
  dims: readonly number[],
  dataType: DataType = dataTypeOfArray(data),
): TensorProto {
  if (elementCount(dims) !== data.length) {
    throw new UnsupportedOperationError(
      `Tensor "${name}": ${data.length} values do not fill the shape [${dims.join(', ')}] (${elementCount(dims)} elements).`,
    );
  }
  const rawData = new Uint8Array(data.byteLength);
  rawData.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return create(TensorProtoSchema, { name, dataType, dims: dims.map((d) => BigInt(d)), rawData });
}
