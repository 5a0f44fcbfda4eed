import { getIntAttribute, getIntsAttribute, getTensorAttribute } from '../attributes.js';
import { DataType, type NodeProto } from '../proto.js';
import { elementCount, type TensorArray, tensorToArray } from '../tensor.js';

/** A tensor value computed in JavaScript. */
export interface ConstantTensor {
  dataType: DataType;
  dims: number[];
  data: TensorArray;
}

/** Ops `evaluateConstantNode` can compute: the small shape and integer ops of exported graphs. */
export const CONSTANT_FOLDABLE_OPS: ReadonlySet<string> = new Set([
  'Identity',
  'Shape',
  'Gather',
  'Unsqueeze',
  'Squeeze',
  'Concat',
  'Reshape',
  'Cast',
  'Slice',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'ConstantOfShape',
  'Range',
]);

type ArrayConstructor = new (length: number) => TensorArray;

const ARRAY_OF_TYPE: ReadonlyMap<DataType, ArrayConstructor> = new Map<DataType, ArrayConstructor>([
  [DataType.FLOAT, Float32Array],
  [DataType.DOUBLE, Float64Array],
  [DataType.INT8, Int8Array],
  [DataType.UINT8, Uint8Array],
  [DataType.BOOL, Uint8Array],
  [DataType.INT16, Int16Array],
  [DataType.UINT16, Uint16Array],
  [DataType.INT32, Int32Array],
  [DataType.UINT32, Uint32Array],
  [DataType.INT64, BigInt64Array],
  [DataType.UINT64, BigUint64Array],
]);

/** True for the element types `evaluateConstantNode` computes with (not float16, strings, 4-bit). */
export function isEvaluableType(dataType: DataType): boolean {
  return ARRAY_OF_TYPE.has(dataType);
}

const isBig = (t: DataType): boolean => t === DataType.INT64 || t === DataType.UINT64;
const isFloat = (t: DataType): boolean => t === DataType.FLOAT || t === DataType.DOUBLE;

function allocate(dataType: DataType, length: number): TensorArray | undefined {
  const ctor = ARRAY_OF_TYPE.get(dataType);
  return ctor === undefined ? undefined : new ctor(length);
}

/** The values of a tensor as plain numbers (int64 beyond 2^53 rounds, which only marks "until the end"). */
function numbers(t: ConstantTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

function withDims(t: ConstantTensor, dims: number[]): ConstantTensor {
  return { dataType: t.dataType, dims, data: t.data };
}

/**
 * Computes the outputs of one node whose inputs are all known, for the ops in
 * `CONSTANT_FOLDABLE_OPS` and the numeric types with a typed-array form. Integer arithmetic
 * follows ONNX Runtime (division truncates toward zero, int64 exact as bigint); float results
 * are rounded once to the output type, as a float32 kernel does. Returns undefined when the op,
 * a type or a value is outside what this evaluator handles (division by zero, an index out of
 * range, float16), so the caller leaves the node in the graph.
 */
export function evaluateConstantNode(
  node: NodeProto,
  inputs: readonly (ConstantTensor | undefined)[],
): ConstantTensor[] | undefined {
  const x = inputs[0];
  switch (node.opType) {
    case 'Identity':
      return x === undefined ? undefined : [x];
    case 'Shape':
      return x === undefined ? undefined : [shapeOf(node, x.dims)];
    case 'Gather':
      return x === undefined || inputs[1] === undefined ? undefined : optional(gather(node, x, inputs[1]));
    case 'Unsqueeze':
      return x === undefined ? undefined : optional(unsqueeze(node, x, inputs[1]));
    case 'Squeeze':
      return x === undefined ? undefined : optional(squeeze(node, x, inputs[1]));
    case 'Reshape':
      return x === undefined || inputs[1] === undefined ? undefined : optional(reshape(node, x, inputs[1]));
    case 'Concat':
      return inputs.some((i) => i === undefined) ? undefined : optional(concat(node, inputs as ConstantTensor[]));
    case 'Cast':
      return x === undefined ? undefined : optional(cast(x, getIntAttribute(node, 'to', DataType.UNDEFINED)));
    case 'Slice':
      return x === undefined ? undefined : optional(slice(x, inputs));
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      return x === undefined || inputs[1] === undefined ? undefined : optional(arithmetic(node.opType, x, inputs[1]));
    case 'ConstantOfShape':
      return x === undefined ? undefined : optional(constantOfShape(node, x));
    case 'Range':
      return inputs.length < 3 || inputs.some((i) => i === undefined) ? undefined : optional(range(inputs as ConstantTensor[]));
    default:
      return undefined;
  }
}

function optional(t: ConstantTensor | undefined): ConstantTensor[] | undefined {
  return t === undefined ? undefined : [t];
}

/** The static dims of a tensor as the int64 output of Shape (with opset-15 start/end). */
export function shapeOf(node: NodeProto, dims: readonly number[]): ConstantTensor {
  const rank = dims.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(getIntAttribute(node, 'start', 0));
  const end = clamp(getIntAttribute(node, 'end', rank));
  const values = dims.slice(start, Math.max(start, end));
  return { dataType: DataType.INT64, dims: [values.length], data: BigInt64Array.from(values, BigInt) };
}

function normalizeAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

function gather(node: NodeProto, data: ConstantTensor, indices: ConstantTensor): ConstantTensor | undefined {
  const axis = normalizeAxis(getIntAttribute(node, 'axis', 0), data.dims.length);
  if (axis === undefined) return undefined;
  const axisLength = data.dims[axis] as number;
  const outer = elementCount(data.dims.slice(0, axis));
  const inner = elementCount(data.dims.slice(axis + 1));
  const picks = numbers(indices).map((i) => (i < 0 ? i + axisLength : i));
  if (picks.some((i) => i < 0 || i >= axisLength)) return undefined;
  const out = allocate(data.dataType, outer * picks.length * inner);
  if (out === undefined) return undefined;
  let k = 0;
  for (let o = 0; o < outer; o++) {
    for (const p of picks) {
      const from = (o * axisLength + p) * inner;
      for (let i = 0; i < inner; i++) out[k++] = data.data[from + i] as never;
    }
  }
  return { dataType: data.dataType, dims: [...data.dims.slice(0, axis), ...indices.dims, ...data.dims.slice(axis + 1)], data: out };
}

function axesOf(node: NodeProto, input: ConstantTensor | undefined): number[] | undefined {
  return getIntsAttribute(node, 'axes') ?? (input === undefined ? undefined : numbers(input));
}

function unsqueeze(node: NodeProto, x: ConstantTensor, axesInput: ConstantTensor | undefined): ConstantTensor | undefined {
  const axes = axesOf(node, axesInput);
  if (axes === undefined) return undefined;
  const rank = x.dims.length + axes.length;
  const positions = new Set(axes.map((a) => normalizeAxis(a, rank)));
  if (positions.has(undefined) || positions.size !== axes.length) return undefined;
  const dims: number[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) dims.push(positions.has(i) ? 1 : (x.dims[next++] as number));
  return withDims(x, dims);
}

function squeeze(node: NodeProto, x: ConstantTensor, axesInput: ConstantTensor | undefined): ConstantTensor | undefined {
  const axes = axesOf(node, axesInput);
  if (axes === undefined) return withDims(x, x.dims.filter((d) => d !== 1));
  const drop = new Set(axes.map((a) => normalizeAxis(a, x.dims.length)));
  if (drop.has(undefined) || [...drop].some((a) => x.dims[a as number] !== 1)) return undefined;
  return withDims(x, x.dims.filter((_, i) => !drop.has(i)));
}

function reshape(node: NodeProto, x: ConstantTensor, shape: ConstantTensor): ConstantTensor | undefined {
  const allowZero = getIntAttribute(node, 'allowzero', 0) === 1;
  const dims = numbers(shape).map((d, i) => (d === 0 && !allowZero ? (x.dims[i] ?? -2) : d));
  const inferred = dims.indexOf(-1);
  if (inferred >= 0) {
    const known = elementCount(dims.filter((_, i) => i !== inferred));
    if (known === 0) return undefined;
    dims[inferred] = x.data.length / known;
  }
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || elementCount(dims) !== x.data.length) return undefined;
  return withDims(x, dims);
}

function concat(node: NodeProto, inputs: readonly ConstantTensor[]): ConstantTensor | undefined {
  const first = inputs[0];
  if (first === undefined) return undefined;
  const axis = normalizeAxis(getIntAttribute(node, 'axis', 0), first.dims.length);
  if (axis === undefined || inputs.some((t) => t.dataType !== first.dataType || t.dims.length !== first.dims.length)) return undefined;
  const outer = elementCount(first.dims.slice(0, axis));
  const dims = [...first.dims];
  dims[axis] = inputs.reduce((sum, t) => sum + (t.dims[axis] as number), 0);
  const out = allocate(first.dataType, elementCount(dims));
  if (out === undefined) return undefined;
  let k = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of inputs) {
      const block = t.data.length / outer;
      for (let i = 0; i < block; i++) out[k++] = t.data[o * block + i] as never;
    }
  }
  return { dataType: first.dataType, dims, data: out };
}

/** Casts like ONNX Runtime: float to int truncates toward zero, anything non-zero to bool is 1. */
function cast(x: ConstantTensor, to: DataType): ConstantTensor | undefined {
  const out = allocate(to, x.data.length);
  if (out === undefined || ARRAY_OF_TYPE.get(x.dataType) === undefined) return undefined;
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i] as number | bigint;
    if (to === DataType.BOOL) {
      out[i] = (v !== 0 && v !== 0n ? 1 : 0) as never;
    } else if (isBig(to)) {
      if (typeof v === 'number' && !Number.isFinite(v)) return undefined;
      out[i] = (typeof v === 'bigint' ? v : BigInt(Math.trunc(v))) as never;
    } else if (isFloat(to)) {
      out[i] = Number(v) as never;
    } else {
      const n = Number(v);
      if (!Number.isFinite(n)) return undefined;
      out[i] = Math.trunc(n) as never;
    }
  }
  return { dataType: to, dims: [...x.dims], data: out };
}

function slice(x: ConstantTensor, inputs: readonly (ConstantTensor | undefined)[]): ConstantTensor | undefined {
  const [, startsT, endsT, axesT, stepsT] = inputs;
  if (startsT === undefined || endsT === undefined) return undefined;
  const rank = x.dims.length;
  const starts = numbers(startsT);
  const ends = numbers(endsT);
  const axes = axesT === undefined ? starts.map((_, i) => i) : numbers(axesT);
  const steps = stepsT === undefined ? starts.map(() => 1) : numbers(stepsT);
  const begin = x.dims.map(() => 0);
  const step = x.dims.map(() => 1);
  const dims = [...x.dims];
  for (let i = 0; i < starts.length; i++) {
    const axis = normalizeAxis(axes[i] ?? i, rank);
    const s = steps[i] ?? 1;
    if (axis === undefined || s === 0) return undefined;
    const d = x.dims[axis] as number;
    let b = starts[i] as number;
    let e = ends[i] as number;
    b = b < 0 ? b + d : b;
    e = e < 0 ? e + d : e;
    if (s > 0) {
      b = Math.min(Math.max(b, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      b = Math.min(Math.max(b, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    begin[axis] = b;
    step[axis] = s;
    dims[axis] = Math.max(0, Math.ceil((e - b) / s));
  }
  const out = allocate(x.dataType, elementCount(dims));
  if (out === undefined) return undefined;
  const strides = stridesOf(x.dims);
  const index = dims.map(() => 0);
  for (let k = 0; k < out.length; k++) {
    let from = 0;
    for (let a = 0; a < rank; a++) from += ((begin[a] as number) + (index[a] as number) * (step[a] as number)) * (strides[a] as number);
    out[k] = x.data[from] as never;
    for (let a = rank - 1; a >= 0; a--) {
      index[a] = (index[a] as number) + 1;
      if ((index[a] as number) < (dims[a] as number)) break;
      index[a] = 0;
    }
  }
  return { dataType: x.dataType, dims, data: out };
}

function stridesOf(dims: readonly number[]): number[] {
  const strides = dims.map(() => 1);
  for (let a = dims.length - 2; a >= 0; a--) strides[a] = (strides[a + 1] as number) * (dims[a + 1] as number);
  return strides;
}

/** numpy broadcasting of two static shapes, or undefined when they do not broadcast. */
function broadcastStatic(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** For each output element, the flat index it reads in an input of `dims` broadcast to `outDims`. */
function broadcastIndex(dims: readonly number[], outDims: readonly number[]): (k: number) => number {
  const rank = outDims.length;
  const padded = [...new Array<number>(rank - dims.length).fill(1), ...dims];
  const strides = stridesOf(padded).map((s, a) => (padded[a] === 1 ? 0 : s));
  const outStrides = stridesOf(outDims);
  return (k) => {
    let from = 0;
    let rest = k;
    for (let a = 0; a < rank; a++) {
      const i = Math.floor(rest / (outStrides[a] as number));
      rest -= i * (outStrides[a] as number);
      from += i * (strides[a] as number);
    }
    return from;
  };
}

function arithmetic(op: string, a: ConstantTensor, b: ConstantTensor): ConstantTensor | undefined {
  if (a.dataType !== b.dataType) return undefined;
  const dims = broadcastStatic(a.dims, b.dims);
  if (dims === undefined) return undefined;
  const out = allocate(a.dataType, elementCount(dims));
  if (out === undefined || a.dataType === DataType.BOOL) return undefined;
  const ia = broadcastIndex(a.dims, dims);
  const ib = broadcastIndex(b.dims, dims);
  const integer = !isFloat(a.dataType);
  for (let k = 0; k < out.length; k++) {
    const x = a.data[ia(k)] as number | bigint;
    const y = b.data[ib(k)] as number | bigint;
    if (typeof x === 'bigint' && typeof y === 'bigint') {
      if (op === 'Div' && y === 0n) return undefined;
      // BigInt division truncates toward zero, like C++ integer division in ORT's kernels.
      out[k] = (op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : x / y) as never;
    } else {
      const [p, q] = [Number(x), Number(y)];
      if (integer && op === 'Div' && q === 0) return undefined;
      const r = op === 'Add' ? p + q : op === 'Sub' ? p - q : op === 'Mul' ? p * q : p / q;
      out[k] = (integer ? Math.trunc(r) : r) as never;
    }
  }
  return { dataType: a.dataType, dims, data: out };
}

function constantOfShape(node: NodeProto, shape: ConstantTensor): ConstantTensor | undefined {
  const dims = numbers(shape);
  const value = getTensorAttribute(node, 'value');
  const dataType = value?.dataType ?? DataType.FLOAT;
  const out = allocate(dataType, elementCount(dims));
  if (out === undefined || dims.some((d) => !Number.isInteger(d) || d < 0)) return undefined;
  if (value !== undefined) {
    const fill = tensorToArray(value)[0];
    if (fill === undefined) return undefined;
    out.fill(fill as never);
  }
  return { dataType, dims, data: out };
}

function range([start, limit, delta]: readonly ConstantTensor[]): ConstantTensor | undefined {
  if (start === undefined || limit === undefined || delta === undefined) return undefined;
  const [s, l, d] = [numbers(start)[0], numbers(limit)[0], numbers(delta)[0]];
  if (s === undefined || l === undefined || d === undefined || d === 0) return undefined;
  const n = Math.max(Math.ceil((l - s) / d), 0);
  const out = allocate(start.dataType, n);
  if (out === undefined) return undefined;
  if (isBig(start.dataType)) {
    for (let i = 0; i < n; i++) out[i] = ((start.data[0] as bigint) + BigInt(i) * (delta.data[0] as bigint)) as never;
  } else {
    // ORT accumulates `value += delta` in the output type; float32 steps round like it does.
    const round = start.dataType === DataType.FLOAT ? Math.fround : (v: number) => v;
    let value = s;
    for (let i = 0; i < n; i++) {
      out[i] = value as never;
      value = round(value + d);
    }
  }
  return { dataType: start.dataType, dims: [n], data: out };
}
