import { create } from '@bufbuild/protobuf';
import { ModelFormatError } from '@open-autoglm/core';
import {
  findAttribute,
  getFloatAttribute,
  getIntAttribute,
  getIntsAttribute,
  getStringAttribute,
  getTensorAttribute,
} from './attributes.js';
import {
  DataLocation,
  DataType,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from './proto.js';
import { isDefaultDomain, OnnxGraph } from './OnnxGraph.js';
import { OnnxModel } from './OnnxModel.js';
import { tensorToArray } from './tensor.js';

/**
 * One dimension of a tensor: a number when known, the name of a symbol (`batch`) when it is
 * symbolic, or null when nothing is known about it.
 */
export type Dim = number | string | null;

/** Element type and shape of a tensor. `dims` is undefined when even the rank is unknown. */
export interface TensorTypeInfo {
  dataType: DataType;
  dims: Dim[] | undefined;
}

export interface ShapeInferenceOptions {
  /** Values bound to symbolic dimensions, e.g. `{ batch: 1 }`; unbound symbols are kept. */
  dims?: Readonly<Record<string, number>>;
}

/** A node whose outputs could not be inferred. */
export interface UninferredNode {
  /** Node name, or `<opType>#<index>` for unnamed nodes. */
  node: string;
  opType: string;
  domain: string;
  reason: string;
}

export interface ShapeInferenceResult {
  /** Every tensor of the main graph: graph inputs, initializers and node outputs. */
  shapes: Map<string, TensorTypeInfo>;
  /** Nodes of an op without a shape rule here (their outputs are unknown). */
  unsupported: UninferredNode[];
  /** Nodes with a rule whose outputs stay (partly) unknown, e.g. a Reshape to a computed shape. */
  unresolved: UninferredNode[];
}

/** The largest constant (rank 0 or 1) whose values are tracked to resolve shape inputs. */
const MAX_TRACKED_VALUES = 1024;
/** int64 "until the end" markers in Slice are far beyond any real dimension. */
const HUGE = 2 ** 53;

/**
 * Infers the element type and shape of every tensor of the main graph, in topological order
 * (a graph with a cycle throws ModelFormatError).
 * Symbolic dims of the graph inputs are kept unless bound in `options.dims`; the small integer
 * tensors that feed shape inputs (Shape -> Gather -> Concat -> Reshape chains, constants) are
 * evaluated symbolically so that those shapes resolve too. Ops without a rule, and ops of other
 * domains, give unknown outputs and are listed in `unsupported`; the model is never modified.
 * Throws ModelFormatError when the graph is inconsistent (shapes that cannot broadcast, a Conv
 * whose weight does not match its input).
 */
export function inferShapes(model: ModelProto, options: ShapeInferenceOptions = {}): ShapeInferenceResult {
  const graph = model.graph;
  if (graph === undefined) {
    throw new ModelFormatError('The model has no graph, so there is nothing to infer shapes for. Re-export the model.');
  }
  const opset = new OnnxModel(model).opsetVersion('') ?? 1;
  const bindings = options.dims ?? {};
  const shapes = new Map<string, TensorTypeInfo>();
  const values = new Map<string, Dim[]>();
  const unsupported: UninferredNode[] = [];
  const unresolved: UninferredNode[] = [];

  const inputNames = new Set(graph.input.map((i) => i.name));
  for (const init of graph.initializer) {
    shapes.set(init.name, { dataType: init.dataType, dims: init.dims.map(Number) });
    // An initializer that is also a graph input is only a default: a caller may feed other values.
    const v = inputNames.has(init.name) ? undefined : constantValues(init);
    if (v !== undefined) values.set(init.name, v);
  }
  for (const input of graph.input) {
    const info = tensorTypeOf(input, bindings);
    // An input that is also an initializer (IR < 4) keeps the initializer's exact shape unless declared.
    if (info !== undefined && (info.dims !== undefined || !shapes.has(input.name))) shapes.set(input.name, info);
  }
  const declared = new Map<string, TensorTypeInfo>();
  for (const vi of [...graph.valueInfo, ...graph.output]) {
    const info = tensorTypeOf(vi, bindings);
    if (info !== undefined) declared.set(vi.name, info);
  }

  const view = new OnnxGraph(graph);
  for (const node of view.topologicalOrder()) {
    const label = node.name !== '' ? node.name : `${node.opType}#${view.indexOfNode(node)}`;
    const domain = isDefaultDomain(node.domain) ? '' : node.domain;
    const rule = domain === '' ? SHAPE_RULES.get(node.opType) : undefined;
    let outputs: (TensorTypeInfo | undefined)[] = [];
    if (rule === undefined) {
      unsupported.push({
        node: label,
        opType: node.opType,
        domain,
        reason:
          domain === ''
            ? `no shape rule for ${node.opType}`
            : `op ${node.opType} of domain "${domain}" is not a standard ONNX op`,
      });
    } else {
      const context = new NodeContext(node, label, opset, shapes, values);
      outputs = rule(context);
      if (context.unresolvedReason !== undefined) {
        unresolved.push({ node: label, opType: node.opType, domain, reason: context.unresolvedReason });
      }
      const propagate = VALUE_RULES.get(node.opType);
      if (propagate !== undefined) {
        const out = propagate(context, outputs[0]);
        if (out !== undefined && out.length <= MAX_TRACKED_VALUES && node.output[0]) values.set(node.output[0], out);
      }
    }
    node.output.forEach((name, i) => {
      if (name === '') return;
      const inferred = outputs[i];
      const fallback = declared.get(name);
      if (inferred !== undefined && (inferred.dims !== undefined || fallback === undefined)) {
        shapes.set(name, inferred);
      } else if (fallback !== undefined) {
        shapes.set(name, { dataType: fallback.dataType || (inferred?.dataType ?? DataType.UNDEFINED), dims: fallback.dims });
      } else {
        shapes.set(name, { dataType: DataType.UNDEFINED, dims: undefined });
      }
    });
  }
  return { shapes, unsupported, unresolved };
}

/**
 * Writes inferred types into `graph.value_info` for every node output that is not a graph
 * output, replacing entries of the same name (so a model carries its intermediate shapes, as
 * tools like Netron and ORT's optimizer expect). Graph inputs and outputs, the model's
 * signature, are left as declared. Tensors whose element type is unknown are skipped.
 * Returns how many value_info entries were written. Mutates the model.
 */
export function writeInferredShapes(model: ModelProto, inference: ShapeInferenceResult): number {
  const graph = model.graph;
  if (graph === undefined) return 0;
  const skip = new Set<string>([
    ...graph.input.map((v) => v.name),
    ...graph.output.map((v) => v.name),
    ...graph.initializer.map((t) => t.name),
  ]);
  const written = new Map<string, ValueInfoProto>();
  for (const node of graph.node) {
    for (const name of node.output) {
      if (name === '' || skip.has(name)) continue;
      const info = inference.shapes.get(name);
      if (info === undefined || info.dataType === DataType.UNDEFINED) continue;
      written.set(name, toValueInfo(name, info));
    }
  }
  graph.valueInfo = [...graph.valueInfo.filter((v) => !written.has(v.name)), ...written.values()];
  return written.size;
}

/** A ValueInfoProto for a tensor: numbers become dim_value, symbols dim_param, null an empty dim. */
export function toValueInfo(name: string, info: TensorTypeInfo): ValueInfoProto {
  const shape =
    info.dims === undefined
      ? undefined
      : create(TensorShapeProtoSchema, {
          dim: info.dims.map((d) =>
            create(TensorShapeProto_DimensionSchema, {
              value:
                typeof d === 'number'
                  ? { case: 'dimValue', value: BigInt(d) }
                  : typeof d === 'string'
                    ? { case: 'dimParam', value: d }
                    : { case: undefined },
            }),
          ),
        });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: info.dataType, shape }) },
    }),
  });
}

/** The element type and shape declared by a ValueInfoProto, with symbols bound; undefined if not a tensor. */
export function tensorTypeOf(
  valueInfo: ValueInfoProto,
  bindings: Readonly<Record<string, number>> = {},
): TensorTypeInfo | undefined {
  const type = valueInfo.type?.value;
  if (type?.case !== 'tensorType') return undefined;
  const shape = type.value.shape;
  return {
    dataType: type.value.elemType,
    dims: shape?.dim.map((d): Dim => {
      if (d.value.case === 'dimValue') return Number(d.value.value);
      if (d.value.case === 'dimParam') return bindings[d.value.value] ?? d.value.value;
      return null;
    }),
  };
}

/**
 * Broadcasts shapes by the numpy rules. A symbol broadcast against 1 stays, against a number
 * n > 1 becomes n (the only value that can be valid), against another symbol becomes unknown.
 * Returns undefined when a rank is unknown; throws when two known dims conflict.
 */
export function broadcastShapes(shapes: readonly (readonly Dim[] | undefined)[], what = 'broadcast'): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const known = shapes as readonly (readonly Dim[])[];
  const rank = Math.max(0, ...known.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of known) {
      const d = s.length - rank + i >= 0 ? (s[s.length - rank + i] as Dim) : 1;
      dim = broadcastDim(dim, d, known, what);
    }
    out.push(dim);
  }
  return out;
}

function broadcastDim(a: Dim, b: Dim, shapes: readonly (readonly Dim[])[], what: string): Dim {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') {
    throw new ModelFormatError(
      `${what}: shapes ${shapes.map(formatDims).join(' and ')} cannot be broadcast together (${a} vs ${b}). ` +
        'The model is inconsistent; re-export it or check the edit that produced it.',
    );
  }
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null;
}

/** `[batch, 3, ?]` */
export function formatDims(dims: readonly Dim[] | undefined): string {
  if (dims === undefined) return '[?rank]';
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** Values of a small rank-0/1 numeric tensor (int64 beyond 2^53 rounds, which only marks "huge"). */
function constantValues(tensor: TensorProto): Dim[] | undefined {
  if (tensor.dims.length > 1 || tensor.dataLocation === DataLocation.EXTERNAL) return undefined;
  const count = tensor.dims.length === 0 ? 1 : Number(tensor.dims[0]);
  if (count > MAX_TRACKED_VALUES || !TRACKED_TYPES.has(tensor.dataType)) return undefined;
  return Array.from(tensorToArray(tensor) as ArrayLike<number | bigint>, (v) => Number(v));
}

const INTEGER_TYPES = new Set<DataType>([
  DataType.INT8,
  DataType.UINT8,
  DataType.INT16,
  DataType.UINT16,
  DataType.INT32,
  DataType.UINT32,
  DataType.INT64,
  DataType.UINT64,
  DataType.BOOL,
]);
const TRACKED_TYPES = new Set<DataType>([...INTEGER_TYPES, DataType.FLOAT, DataType.DOUBLE]);

/** What a shape rule sees of one node: its inputs' types and tracked values, and its attributes. */
class NodeContext {
  unresolvedReason: string | undefined;

  constructor(
    readonly node: NodeProto,
    readonly label: string,
    readonly opset: number,
    private readonly shapes: ReadonlyMap<string, TensorTypeInfo>,
    private readonly values: ReadonlyMap<string, Dim[]>,
  ) {}

  /** True when input i is given (optional inputs may be absent or named ''). */
  has(i: number): boolean {
    const name = this.node.input[i];
    return name !== undefined && name !== '';
  }

  input(i: number): TensorTypeInfo {
    const name = this.node.input[i];
    if (name === undefined || name === '') return { dataType: DataType.UNDEFINED, dims: undefined };
    return this.shapes.get(name) ?? { dataType: DataType.UNDEFINED, dims: undefined };
  }

  dims(i: number): Dim[] | undefined {
    return this.input(i).dims;
  }

  type(i: number): DataType {
    return this.input(i).dataType;
  }

  /** Tracked values of input i (small constant or shape-derived tensors). */
  value(i: number): Dim[] | undefined {
    const name = this.node.input[i];
    return name === undefined || name === '' ? undefined : this.values.get(name);
  }

  /** Tracked values that are all numbers. */
  numbers(i: number): number[] | undefined {
    const v = this.value(i);
    return v !== undefined && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }

  /** An INTS attribute, else the numeric values of input i (ops that moved attributes to inputs). */
  intsFromAttributeOrInput(attribute: string, i: number): number[] | undefined {
    const attr = getIntsAttribute(this.node, attribute);
    if (attr !== undefined) return attr;
    return this.has(i) ? this.numbers(i) : undefined;
  }

  /** Records why an output stays unknown and returns an unknown-rank result of the given type. */
  unresolved(reason: string, dataType: DataType = this.type(0)): TensorTypeInfo {
    this.unresolvedReason ??= reason;
    return { dataType, dims: undefined };
  }

  fail(message: string): never {
    throw new ModelFormatError(
      `${this.node.opType} node "${this.label}": ${message}. The model is inconsistent; re-export it or check the edit that produced it.`,
    );
  }

  normalizeAxis(axis: number, rank: number): number {
    const a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) this.fail(`axis ${axis} is out of range for rank ${rank}`);
    return a;
  }
}

type ShapeRule = (c: NodeContext) => (TensorTypeInfo | undefined)[];
type ValueRule = (c: NodeContext, output: TensorTypeInfo | undefined) => Dim[] | undefined;

const same: ShapeRule = (c) => [c.input(0)];
const toType =
  (dataType: DataType): ShapeRule =>
  (c) => [{ dataType, dims: c.dims(0) }];
const broadcast =
  (dataType?: DataType): ShapeRule =>
  (c) => {
    const inputs = c.node.input.map((_, i) => c.dims(i));
    return [{ dataType: dataType ?? c.type(0), dims: broadcastShapes(inputs, `${c.node.opType} node "${c.label}"`) }];
  };

function product(dims: readonly Dim[]): Dim {
  let n = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === 'string') symbols.push(d);
    else n *= d;
  }
  if (symbols.length === 0) return n;
  if (n === 0) return 0;
  return symbols.length === 1 && n === 1 ? (symbols[0] as string) : null;
}

function sumDims(dims: readonly Dim[]): Dim {
  let n = 0;
  const symbols: Dim[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n += d;
    else symbols.push(d);
  }
  if (symbols.length === 0) return n;
  return symbols.length === 1 && n === 0 ? (symbols[0] as Dim) : null;
}

/** Two dims that must be equal (Concat's other axes, MatMul's inner dim): the more informative one. */
function mergeDims(a: Dim, b: Dim, c: NodeContext, what: string): Dim {
  if (a === b || b === null) return a;
  if (a === null) return b;
  if (typeof a === 'number' && typeof b === 'number') c.fail(`${what}: ${a} does not match ${b}`);
  return typeof a === 'number' ? a : b;
}

function spatialOutput(
  c: NodeContext,
  input: Dim,
  kernel: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  autoPad: string,
  ceilMode: boolean,
): Dim {
  const effectiveKernel = (kernel - 1) * dilation + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    return typeof input === 'number' ? Math.ceil(input / stride) : stride === 1 ? input : null;
  }
  if (typeof input !== 'number') {
    return effectiveKernel === 1 && stride === 1 && padBegin + padEnd === 0 ? input : null;
  }
  const pads = autoPad === 'VALID' ? 0 : padBegin + padEnd;
  const span = input + pads - effectiveKernel;
  if (span < 0) c.fail(`input size ${input} is smaller than the kernel extent ${effectiveKernel} plus padding ${pads}`);
  if (!ceilMode) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  // The last window must start inside the input or its left padding (PyTorch and ORT agree).
  if ((out - 1) * stride >= input + padBegin) out--;
  return out;
}

/** Spatial output dims of Conv/pooling ops for input dims [N, C, spatial...]. */
function windowedDims(c: NodeContext, x: readonly Dim[], kernel: readonly number[], ceilMode = false): Dim[] {
  const n = kernel.length;
  const strides = getIntsAttribute(c.node, 'strides', new Array<number>(n).fill(1));
  const dilations = getIntsAttribute(c.node, 'dilations', new Array<number>(n).fill(1));
  const pads = getIntsAttribute(c.node, 'pads', new Array<number>(2 * n).fill(0));
  const autoPad = getStringAttribute(c.node, 'auto_pad', 'NOTSET');
  return kernel.map((k, i) =>
    spatialOutput(
      c,
      x[i + 2] ?? null,
      k,
      strides[i] ?? 1,
      dilations[i] ?? 1,
      pads[i] ?? 0,
      pads[i + n] ?? 0,
      autoPad,
      ceilMode,
    ),
  );
}

/** Conv and its integer forms; `xIndex`/`wIndex` locate the input and weight (QLinearConv has scales between). */
const conv =
  (dataType?: (c: NodeContext) => DataType, xIndex = 0, wIndex = 1): ShapeRule =>
  (c) => {
    const outType = dataType?.(c) ?? c.type(xIndex);
    const x = c.dims(xIndex);
    const w = c.dims(wIndex);
    if (x === undefined || w === undefined) return [c.unresolved('input or weight rank unknown', outType)];
    if (w.length !== x.length) c.fail(`weight rank ${w.length} does not match input rank ${x.length}`);
    const kernel = getIntsAttribute(c.node, 'kernel_shape') ?? w.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
    if (kernel.some((k) => Number.isNaN(k))) return [c.unresolved('kernel shape unknown', outType)];
    const group = getIntAttribute(c.node, 'group', 1);
    const inChannels = x[1];
    const weightChannels = w[1];
    if (typeof inChannels === 'number' && typeof weightChannels === 'number' && inChannels !== weightChannels * group) {
      c.fail(`input has ${inChannels} channels but the weight expects ${weightChannels} x group ${group}`);
    }
    return [{ dataType: outType, dims: [x[0] ?? null, w[0] ?? null, ...windowedDims(c, x, kernel)] }];
  };

const convTranspose: ShapeRule = (c) => {
  const x = c.dims(0);
  const w = c.dims(1);
  if (x === undefined || w === undefined) return [c.unresolved('input or weight rank unknown')];
  const n = x.length - 2;
  const kernel = getIntsAttribute(c.node, 'kernel_shape') ?? w.slice(2).map((d) => (typeof d === 'number' ? d : NaN));
  const group = getIntAttribute(c.node, 'group', 1);
  const outChannels = typeof w[1] === 'number' ? w[1] * group : null;
  const explicit = getIntsAttribute(c.node, 'output_shape');
  if (explicit !== undefined) {
    return [{ dataType: c.type(0), dims: [x[0] ?? null, outChannels, ...explicit.slice(-n)] }];
  }
  const strides = getIntsAttribute(c.node, 'strides', new Array<number>(n).fill(1));
  const dilations = getIntsAttribute(c.node, 'dilations', new Array<number>(n).fill(1));
  const pads = getIntsAttribute(c.node, 'pads', new Array<number>(2 * n).fill(0));
  const outputPadding = getIntsAttribute(c.node, 'output_padding', new Array<number>(n).fill(0));
  const autoPad = getStringAttribute(c.node, 'auto_pad', 'NOTSET');
  const spatial = kernel.map((k, i): Dim => {
    const input = x[i + 2] ?? null;
    if (typeof input !== 'number' || Number.isNaN(k)) return null;
    const s = strides[i] ?? 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return input * s;
    const total = autoPad === 'VALID' ? 0 : (pads[i] ?? 0) + (pads[i + n] ?? 0);
    return s * (input - 1) + (outputPadding[i] ?? 0) + ((k - 1) * (dilations[i] ?? 1) + 1) - total;
  });
  return [{ dataType: c.type(0), dims: [x[0] ?? null, outChannels, ...spatial] }];
};

const pool: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown'), undefined];
  const kernel = getIntsAttribute(c.node, 'kernel_shape');
  if (kernel === undefined) return c.fail('kernel_shape attribute is missing');
  const ceilMode = getIntAttribute(c.node, 'ceil_mode', 0) === 1;
  const dims = [x[0] ?? null, x[1] ?? null, ...windowedDims(c, x, kernel, ceilMode)];
  return [
    { dataType: c.type(0), dims },
    { dataType: DataType.INT64, dims },
  ];
};

const globalPool: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  return [{ dataType: c.type(0), dims: [x[0] ?? null, x[1] ?? null, ...x.slice(2).map(() => 1)] }];
};

function matmulDims(c: NodeContext, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) c.fail('MatMul inputs must have rank >= 1');
  const a2 = a.length === 1 ? [1, ...a] : a;
  const b2 = b.length === 1 ? [...b, 1] : b;
  mergeDims(a2[a2.length - 1] as Dim, b2[b2.length - 2] as Dim, c, 'inner dimensions');
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)], `${c.node.opType} node "${c.label}"`) ?? [];
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2] as Dim);
  if (b.length > 1) out.push(b2[b2.length - 1] as Dim);
  return out;
}

/** MatMul and its integer forms; `bIndex` locates the second operand (QLinearMatMul has scales between). */
const matmul =
  (dataType?: (c: NodeContext) => DataType, bIndex = 1): ShapeRule =>
  (c) => {
    const outType = dataType?.(c) ?? c.type(0);
    const a = c.dims(0);
    const b = c.dims(bIndex);
    if (a === undefined || b === undefined) return [c.unresolved('input rank unknown', outType)];
    return [{ dataType: outType, dims: matmulDims(c, a, b) }];
  };

const gemm: ShapeRule = (c) => {
  const a = c.dims(0);
  const b = c.dims(1);
  if (a === undefined || b === undefined) return [c.unresolved('input rank unknown')];
  if (a.length !== 2 || b.length !== 2) c.fail(`inputs must be 2-D, got ${formatDims(a)} and ${formatDims(b)}`);
  const [m, ka] = getIntAttribute(c.node, 'transA', 0) === 1 ? [a[1], a[0]] : [a[0], a[1]];
  const [kb, n] = getIntAttribute(c.node, 'transB', 0) === 1 ? [b[1], b[0]] : [b[0], b[1]];
  mergeDims(ka ?? null, kb ?? null, c, 'inner dimensions');
  return [{ dataType: c.type(0), dims: [m ?? null, n ?? null] }];
};

const flatten: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const axis = getIntAttribute(c.node, 'axis', 1);
  const a = axis < 0 ? axis + x.length : axis;
  if (a < 0 || a > x.length) c.fail(`axis ${axis} is out of range for rank ${x.length}`);
  return [{ dataType: c.type(0), dims: [product(x.slice(0, a)), product(x.slice(a))] }];
};

/** Output dims of Reshape: 0 copies the input dim (unless allowzero), -1 takes what is left. */
function reshapeDims(c: NodeContext, x: readonly Dim[] | undefined, shape: readonly Dim[]): Dim[] {
  const allowZero = getIntAttribute(c.node, 'allowzero', 0) === 1;
  const invalid = shape.find((d) => typeof d === 'number' && (d < -1 || !Number.isInteger(d)));
  if (invalid !== undefined) c.fail(`the target shape ${formatDims(shape)} has the invalid size ${invalid}`);
  const out = shape.map((d, i): Dim => (d === 0 && !allowZero ? (x?.[i] ?? null) : d));
  const inferred = out.indexOf(-1);
  if (inferred < 0) return out;
  if (out.indexOf(-1, inferred + 1) >= 0) c.fail('the target shape has more than one -1');
  if (x === undefined || x.includes(null)) {
    out[inferred] = null;
    return out;
  }
  let inCount = 1;
  const inSymbols: string[] = [];
  for (const d of x) typeof d === 'number' ? (inCount *= d) : inSymbols.push(d as string);
  let outCount = 1;
  let resolvable = true;
  out.forEach((d, i) => {
    if (i === inferred) return;
    if (typeof d === 'number') outCount *= d;
    else if (typeof d === 'string' && inSymbols.includes(d)) inSymbols.splice(inSymbols.indexOf(d), 1);
    else resolvable = false;
  });
  let rest: Dim = null;
  if (resolvable && outCount !== 0) {
    const ratio = inCount / outCount;
    if (inSymbols.length === 0) {
      if (!Number.isInteger(ratio)) c.fail(`cannot reshape ${formatDims(x)} into ${formatDims(shape)}`);
      rest = ratio;
    } else if (inSymbols.length === 1 && ratio === 1) {
      rest = inSymbols[0] as string;
    }
  }
  out[inferred] = rest;
  return out;
}

const reshape: ShapeRule = (c) => {
  const shape = c.value(1);
  if (shape === undefined) {
    const shapeDims = c.dims(1);
    const rank = shapeDims?.[0];
    if (typeof rank === 'number') {
      c.unresolved('the target shape is computed at run time');
      return [{ dataType: c.type(0), dims: new Array<Dim>(rank).fill(null) }];
    }
    return [c.unresolved('the target shape is computed at run time')];
  }
  return [{ dataType: c.type(0), dims: reshapeDims(c, c.dims(0), shape) }];
};

const transpose: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const perm = getIntsAttribute(c.node, 'perm', x.map((_, i) => x.length - 1 - i));
  if (perm.length !== x.length) c.fail(`perm has ${perm.length} entries for rank ${x.length}`);
  return [{ dataType: c.type(0), dims: perm.map((p) => x[p] ?? null) }];
};

const gather: ShapeRule = (c) => {
  const data = c.dims(0);
  const indices = c.dims(1);
  if (data === undefined || indices === undefined) return [c.unresolved('input rank unknown')];
  const axis = c.normalizeAxis(getIntAttribute(c.node, 'axis', 0), data.length);
  return [{ dataType: c.type(0), dims: [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)] }];
};

const layerNormalization: ShapeRule = (c) => {
  const x = c.dims(0);
  const axis = getIntAttribute(c.node, 'axis', -1);
  const stashType = getIntAttribute(c.node, 'stash_type', 1) === 1 ? DataType.FLOAT : c.type(0);
  if (x === undefined) return [c.input(0), { dataType: stashType, dims: undefined }, { dataType: stashType, dims: undefined }];
  const a = c.normalizeAxis(axis, x.length);
  const reduced = x.map((d, i) => (i < a ? d : 1));
  return [c.input(0), { dataType: stashType, dims: reduced }, { dataType: stashType, dims: reduced }];
};

const batchNormalization: ShapeRule = (c) => {
  const channels: Dim[] = [c.dims(1)?.[0] ?? null];
  return [c.input(0), { dataType: c.type(3), dims: channels }, { dataType: c.type(4), dims: channels }];
};

const constant: ShapeRule = (c) => {
  const t = getTensorAttribute(c.node, 'value');
  if (t !== undefined) return [{ dataType: t.dataType, dims: t.dims.map(Number) }];
  const node = c.node;
  if (findAttribute(node, 'value_float') !== undefined) return [{ dataType: DataType.FLOAT, dims: [] }];
  if (findAttribute(node, 'value_int') !== undefined) return [{ dataType: DataType.INT64, dims: [] }];
  const floats = findAttribute(node, 'value_floats');
  if (floats !== undefined) return [{ dataType: DataType.FLOAT, dims: [floats.floats.length] }];
  const ints = findAttribute(node, 'value_ints');
  if (ints !== undefined) return [{ dataType: DataType.INT64, dims: [ints.ints.length] }];
  const string = findAttribute(node, 'value_string');
  if (string !== undefined) return [{ dataType: DataType.STRING, dims: [] }];
  const strings = findAttribute(node, 'value_strings');
  if (strings !== undefined) return [{ dataType: DataType.STRING, dims: [strings.strings.length] }];
  const sparse = findAttribute(node, 'sparse_value')?.sparseTensor;
  if (sparse !== undefined) return [{ dataType: sparse.values?.dataType ?? DataType.UNDEFINED, dims: sparse.dims.map(Number) }];
  return c.fail('it has no value attribute');
};

const unsqueeze: ShapeRule = (c) => {
  const x = c.dims(0);
  const axes = c.intsFromAttributeOrInput('axes', 1);
  if (axes === undefined) return [c.unresolved('axes are computed at run time')];
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const rank = x.length + axes.length;
  const positions = new Set(axes.map((a) => c.normalizeAxis(a, rank)));
  const out: Dim[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) out.push(positions.has(i) ? 1 : (x[next++] ?? null));
  return [{ dataType: c.type(0), dims: out }];
};

const squeeze: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const axes = c.intsFromAttributeOrInput('axes', 1);
  if (axes === undefined) {
    if (c.has(1)) return [c.unresolved('axes are computed at run time')];
    if (x.some((d) => typeof d !== 'number')) return [c.unresolved('squeezing all size-1 axes needs static dims')];
    return [{ dataType: c.type(0), dims: x.filter((d) => d !== 1) }];
  }
  const drop = new Set(axes.map((a) => c.normalizeAxis(a, x.length)));
  for (const a of drop) if (typeof x[a] === 'number' && x[a] !== 1) c.fail(`axis ${a} has size ${x[a]}, not 1`);
  return [{ dataType: c.type(0), dims: x.filter((_, i) => !drop.has(i)) }];
};

const concat: ShapeRule = (c) => {
  const inputs = c.node.input.map((_, i) => c.dims(i));
  const ranked = inputs.filter((d): d is Dim[] => d !== undefined);
  if (ranked.length === 0) return [c.unresolved('input ranks unknown')];
  const rank = (ranked[0] as Dim[]).length;
  const axis = c.normalizeAxis(getIntAttribute(c.node, 'axis', 0), rank);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    if (i === axis) {
      out.push(inputs.some((d) => d === undefined) ? null : sumDims(ranked.map((d) => d[i] ?? null)));
    } else {
      out.push(ranked.reduce<Dim>((acc, d) => mergeDims(acc, d[i] ?? null, c, `axis ${i}`), null));
    }
  }
  return [{ dataType: c.type(0), dims: out }];
};

const split: ShapeRule = (c) => {
  const x = c.dims(0);
  const outputs = c.node.output.length;
  if (x === undefined) return c.node.output.map(() => c.unresolved('input rank unknown'));
  const axis = c.normalizeAxis(getIntAttribute(c.node, 'axis', 0), x.length);
  let sizes: Dim[] | undefined = c.intsFromAttributeOrInput('split', 1);
  if (sizes === undefined && c.has(1)) return c.node.output.map(() => c.unresolved('split sizes are computed at run time'));
  if (sizes === undefined) {
    const d = x[axis] ?? null;
    const parts = getIntAttribute(c.node, 'num_outputs', outputs);
    if (typeof d !== 'number') {
      sizes = new Array<Dim>(outputs).fill(null);
    } else {
      // Opset 18 num_outputs allows an uneven split: every chunk ceil(d/n), the last one what is left.
      const chunk = Math.ceil(d / parts);
      sizes = Array.from({ length: outputs }, (_, i) => Math.max(0, Math.min(chunk, d - chunk * i)));
    }
  }
  return sizes.map((s) => ({ dataType: c.type(0), dims: x.map((d, i) => (i === axis ? s : d)) }));
};

/** Length of a Slice along one axis per the ONNX rules (negative indices, clamping, steps). */
function sliceLength(d: Dim, start: number, end: number, step: number): Dim {
  if (typeof d !== 'number') return start === 0 && step === 1 && end >= HUGE / 2 ? d : null;
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), d);
    e = Math.min(Math.max(e, 0), d);
  } else {
    s = Math.min(Math.max(s, 0), d - 1);
    e = Math.min(Math.max(e, -1), d - 1);
  }
  return Math.max(0, Math.ceil((e - s) / step));
}

/** starts/ends/axes/steps of a Slice (inputs since opset 10, attributes before). */
function sliceParameters(c: NodeContext): { starts: number[]; ends: number[]; axes: number[] | undefined; steps: number[] } | undefined {
  const starts = c.intsFromAttributeOrInput('starts', 1);
  const ends = c.intsFromAttributeOrInput('ends', 2);
  if (starts === undefined || ends === undefined) return undefined;
  const axes = c.intsFromAttributeOrInput('axes', 3);
  if (axes === undefined && c.has(3)) return undefined;
  const steps = c.has(4) ? c.numbers(4) : starts.map(() => 1);
  if (steps === undefined) return undefined;
  return { starts, ends, axes, steps };
}

const slice: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const p = sliceParameters(c);
  if (p === undefined) return [c.unresolved('starts/ends/axes/steps are computed at run time')];
  const out = [...x];
  p.starts.forEach((start, i) => {
    const axis = c.normalizeAxis(p.axes?.[i] ?? i, x.length);
    const step = p.steps[i] ?? 1;
    if (step === 0) c.fail('a step is 0');
    out[axis] = sliceLength(x[axis] ?? null, start, p.ends[i] ?? HUGE, step);
  });
  return [{ dataType: c.type(0), dims: out }];
};

function shapeRange(c: NodeContext, rank: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clamp(getIntAttribute(c.node, 'start', 0)), clamp(getIntAttribute(c.node, 'end', rank))];
}

const shape: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [{ dataType: DataType.INT64, dims: [null] }];
  const [start, end] = shapeRange(c, x.length);
  return [{ dataType: DataType.INT64, dims: [Math.max(0, end - start)] }];
};

const constantOfShape: ShapeRule = (c) => {
  const dataType = getTensorAttribute(c.node, 'value')?.dataType ?? DataType.FLOAT;
  const value = c.value(0);
  if (value !== undefined) return [{ dataType, dims: value }];
  const rank = c.dims(0)?.[0];
  c.unresolved('the shape is computed at run time');
  return [{ dataType, dims: typeof rank === 'number' ? new Array<Dim>(rank).fill(null) : undefined }];
};

const expand: ShapeRule = (c) => {
  const target = c.value(1);
  if (target === undefined) return [c.unresolved('the target shape is computed at run time')];
  return [{ dataType: c.type(0), dims: broadcastShapes([c.dims(0), target], `Expand node "${c.label}"`) }];
};

const tile: ShapeRule = (c) => {
  const x = c.dims(0);
  const repeats = c.numbers(1);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  if (repeats === undefined) return [c.unresolved('repeats are computed at run time')];
  return [{ dataType: c.type(0), dims: x.map((d, i) => (typeof d === 'number' ? d * (repeats[i] ?? 1) : repeats[i] === 1 ? d : null)) }];
};

const range: ShapeRule = (c) => {
  const [start, limit, delta] = [c.numbers(0)?.[0], c.numbers(1)?.[0], c.numbers(2)?.[0]];
  if (start === undefined || limit === undefined || delta === undefined) {
    c.unresolved('start/limit/delta are computed at run time');
    return [{ dataType: c.type(0), dims: [null] }];
  }
  if (delta === 0) c.fail('delta is 0');
  return [{ dataType: c.type(0), dims: [Math.max(Math.ceil((limit - start) / delta), 0)] }];
};

const reduce: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const keepDims = getIntAttribute(c.node, 'keepdims', 1) === 1;
  const axes = c.intsFromAttributeOrInput('axes', 1);
  if (axes === undefined && c.has(1)) {
    c.unresolved('axes are computed at run time');
    return [{ dataType: c.type(0), dims: keepDims ? x.map(() => null) : undefined }];
  }
  let reduced: Set<number>;
  if (axes === undefined || axes.length === 0) {
    if (getIntAttribute(c.node, 'noop_with_empty_axes', 0) === 1) return [c.input(0)];
    reduced = new Set(x.map((_, i) => i));
  } else {
    reduced = new Set(axes.map((a) => c.normalizeAxis(a, x.length)));
  }
  const dims = keepDims ? x.map((d, i) => (reduced.has(i) ? 1 : d)) : x.filter((_, i) => !reduced.has(i));
  return [{ dataType: c.type(0), dims }];
};

const argReduce: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown', DataType.INT64)];
  const axis = c.normalizeAxis(getIntAttribute(c.node, 'axis', 0), x.length);
  const keepDims = getIntAttribute(c.node, 'keepdims', 1) === 1;
  return [{ dataType: DataType.INT64, dims: keepDims ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis) }];
};

const topK: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown'), { dataType: DataType.INT64, dims: undefined }];
  const axis = c.normalizeAxis(getIntAttribute(c.node, 'axis', -1), x.length);
  const k: Dim = getIntAttribute(c.node, 'k') ?? c.numbers(1)?.[0] ?? null;
  if (k === null) c.unresolved('k is computed at run time');
  const dims = x.map((d, i) => (i === axis ? k : d));
  return [
    { dataType: c.type(0), dims },
    { dataType: DataType.INT64, dims },
  ];
};

const pad: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  const pads = c.intsFromAttributeOrInput('pads', 1);
  if (pads === undefined) return [c.unresolved('pads are computed at run time')];
  const axes = c.has(3) ? c.numbers(3) : x.map((_, i) => i);
  if (axes === undefined) return [c.unresolved('axes are computed at run time')];
  const out = [...x];
  axes.forEach((axis, i) => {
    const a = c.normalizeAxis(axis, x.length);
    const total = (pads[i] ?? 0) + (pads[i + axes.length] ?? 0);
    const d = x[a] ?? null;
    out[a] = typeof d === 'number' ? d + total : total === 0 ? d : null;
  });
  return [{ dataType: c.type(0), dims: out }];
};

const resize: ShapeRule = (c) => {
  const x = c.dims(0);
  if (x === undefined) return [c.unresolved('input rank unknown')];
  // Opset 10 Resize and Upsample take (X, scales); opset 11+ Resize takes (X, roi, scales, sizes).
  const legacy = c.node.opType === 'Upsample' || c.opset < 11;
  const scalesInput = legacy ? 1 : 2;
  const axes = getIntsAttribute(c.node, 'axes')?.map((a) => c.normalizeAxis(a, x.length)) ?? x.map((_, i) => i);
  const sizes = legacy ? undefined : c.value(3);
  const out = [...x];
  if (sizes !== undefined && sizes.length > 0) {
    axes.forEach((a, i) => (out[a] = sizes[i] ?? null));
    return [{ dataType: c.type(0), dims: out }];
  }
  const scales = getFloatsAttribute(c.node, 'scales') ?? c.numbers(scalesInput);
  if (scales === undefined || scales.length === 0) return [c.unresolved('scales/sizes are computed at run time')];
  axes.forEach((a, i) => {
    const d = x[a] ?? null;
    const s = scales[i] ?? 1;
    out[a] = typeof d === 'number' ? Math.floor(d * s) : s === 1 ? d : null;
  });
  return [{ dataType: c.type(0), dims: out }];
};

function getFloatsAttribute(node: NodeProto, name: string): number[] | undefined {
  const a = findAttribute(node, name);
  return a === undefined ? undefined : [...a.floats];
}

const depthToSpace: ShapeRule = (c) => {
  const x = c.dims(0);
  const b = getIntAttribute(c.node, 'blocksize', 1);
  if (x === undefined || x.length !== 4) return [c.unresolved('input is not 4-D')];
  const [n, ch, h, w] = x as [Dim, Dim, Dim, Dim];
  const scale = (d: Dim, f: number): Dim => (typeof d === 'number' ? d * f : null);
  if (c.node.opType === 'DepthToSpace') {
    return [{ dataType: c.type(0), dims: [n, typeof ch === 'number' ? ch / (b * b) : null, scale(h, b), scale(w, b)] }];
  }
  return [{ dataType: c.type(0), dims: [n, scale(ch, b * b), typeof h === 'number' ? h / b : null, typeof w === 'number' ? w / b : null] }];
};

const quantizeLinear: ShapeRule = (c) => {
  const explicit = getIntAttribute(c.node, 'output_dtype', 0);
  const dataType = explicit !== 0 ? explicit : c.has(2) ? c.type(2) : DataType.UINT8;
  return [{ dataType, dims: c.dims(0) }];
};

const dequantizeLinear: ShapeRule = (c) => [{ dataType: c.type(1), dims: c.dims(0) }];

const dynamicQuantizeLinear: ShapeRule = (c) => [
  { dataType: DataType.UINT8, dims: c.dims(0) },
  { dataType: DataType.FLOAT, dims: [] },
  { dataType: DataType.UINT8, dims: [] },
];

const where: ShapeRule = (c) => [
  { dataType: c.type(1), dims: broadcastShapes([c.dims(0), c.dims(1), c.dims(2)], `Where node "${c.label}"`) },
];

const cast: ShapeRule = (c) => [{ dataType: getIntAttribute(c.node, 'to', DataType.UNDEFINED), dims: c.dims(0) }];

const UNARY_SAME_SHAPE = [
  'Abs', 'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh', 'BitwiseNot', 'Ceil', 'Celu', 'Clip', 'Cos',
  'Cosh', 'CumSum', 'Elu', 'Erf', 'Exp', 'Floor', 'Gelu', 'HardSigmoid', 'HardSwish', 'Hardmax',
  'Identity', 'InstanceNormalization', 'LRN', 'LeakyRelu', 'Log', 'LogSoftmax', 'LpNormalization',
  'MeanVarianceNormalization', 'Mish', 'Neg', 'Reciprocal', 'Relu', 'Round', 'Selu', 'Shrink', 'Sigmoid',
  'Sign', 'Sin', 'Sinh', 'Softmax', 'Softplus', 'Softsign', 'Sqrt', 'Tan', 'Tanh', 'ThresholdedRelu',
  'Trilu', 'ScatterElements', 'ScatterND',
];
const BROADCAST_SAME_TYPE = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'BitShift',
  'BitwiseAnd', 'BitwiseOr', 'BitwiseXor',
];
const BROADCAST_BOOL = ['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor'];
const REDUCTIONS = [
  'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2',
  'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
];

const SHAPE_RULES: ReadonlyMap<string, ShapeRule> = new Map<string, ShapeRule>([
  ...UNARY_SAME_SHAPE.map((op): [string, ShapeRule] => [op, same]),
  ...BROADCAST_SAME_TYPE.map((op): [string, ShapeRule] => [op, broadcast()]),
  ...BROADCAST_BOOL.map((op): [string, ShapeRule] => [op, broadcast(DataType.BOOL)]),
  ...REDUCTIONS.map((op): [string, ShapeRule] => [op, reduce]),
  ['Not', toType(DataType.BOOL)],
  ['IsNaN', toType(DataType.BOOL)],
  ['IsInf', toType(DataType.BOOL)],
  ['Cast', cast],
  ['CastLike', (c) => [{ dataType: c.type(1), dims: c.dims(0) }]],
  ['Dropout', (c) => [c.input(0), { dataType: DataType.BOOL, dims: c.dims(0) }]],
  ['BatchNormalization', batchNormalization],
  ['LayerNormalization', layerNormalization],
  ['Conv', conv()],
  ['ConvInteger', conv(() => DataType.INT32)],
  ['QLinearConv', conv((c) => c.type(7), 0, 3)],
  ['ConvTranspose', convTranspose],
  ['MaxPool', pool],
  ['AveragePool', pool],
  ['LpPool', pool],
  ['GlobalAveragePool', globalPool],
  ['GlobalMaxPool', globalPool],
  ['GlobalLpPool', globalPool],
  ['Gemm', gemm],
  ['MatMul', matmul()],
  ['MatMulInteger', matmul(() => DataType.INT32)],
  ['QLinearMatMul', matmul((c) => c.type(7), 3)],
  ['Flatten', flatten],
  ['Reshape', reshape],
  ['Transpose', transpose],
  ['Gather', gather],
  ['GatherElements', (c) => [{ dataType: c.type(0), dims: c.dims(1) }]],
  ['Constant', constant],
  ['Unsqueeze', unsqueeze],
  ['Squeeze', squeeze],
  ['Concat', concat],
  ['Split', split],
  ['Slice', slice],
  ['Shape', shape],
  ['Size', () => [{ dataType: DataType.INT64, dims: [] }]],
  ['ConstantOfShape', constantOfShape],
  ['Expand', expand],
  ['Tile', tile],
  ['Range', range],
  ['ArgMax', argReduce],
  ['ArgMin', argReduce],
  ['TopK', topK],
  ['Pad', pad],
  ['Resize', resize],
  ['Upsample', resize],
  ['DepthToSpace', depthToSpace],
  ['SpaceToDepth', depthToSpace],
  ['QuantizeLinear', quantizeLinear],
  ['DequantizeLinear', dequantizeLinear],
  ['DynamicQuantizeLinear', dynamicQuantizeLinear],
  ['Where', where],
  ['NonZero', (c) => [{ dataType: DataType.INT64, dims: [c.dims(0)?.length ?? null, null] }]],
]);

// ---------------------------------------------------------------------------------------------
// Value propagation: the elements of small rank-0/1 tensors, possibly symbolic (Shape of a
// tensor with a `batch` axis gives [batch, 128, 64]), so that Reshape/Expand/Slice/... whose
// shape inputs are computed in the graph still resolve.

function isInteger(dataType: DataType): boolean {
  return INTEGER_TYPES.has(dataType);
}

function elementwise(op: (a: number, b: number) => number | undefined, symbolic?: (a: Dim, b: Dim) => Dim | undefined): ValueRule {
  return (c, output) => {
    const a = c.value(0);
    const b = c.value(1);
    if (a === undefined || b === undefined || output?.dims === undefined || output.dims.length > 1) return undefined;
    const n = Math.max(a.length, b.length);
    if (a.length !== n && a.length !== 1) return undefined;
    if (b.length !== n && b.length !== 1) return undefined;
    const out: Dim[] = [];
    for (let i = 0; i < n; i++) {
      const x = a[a.length === 1 ? 0 : i] ?? null;
      const y = b[b.length === 1 ? 0 : i] ?? null;
      let r: Dim | undefined;
      if (typeof x === 'number' && typeof y === 'number') {
        r = op(x, y);
        if (r !== undefined && isInteger(output.dataType)) r = Math.trunc(r);
      } else {
        r = symbolic?.(x, y) ?? null;
      }
      if (r === undefined || (typeof r === 'number' && !Number.isFinite(r))) return undefined;
      out.push(r);
    }
    return out;
  };
}

const VALUE_RULES: ReadonlyMap<string, ValueRule> = new Map<string, ValueRule>([
  [
    'Constant',
    (c) => {
      const t = getTensorAttribute(c.node, 'value');
      if (t !== undefined) return constantValues(t);
      const i = findAttribute(c.node, 'value_int');
      if (i !== undefined) return [Number(i.i)];
      const ints = findAttribute(c.node, 'value_ints');
      if (ints !== undefined) return ints.ints.map(Number);
      const f = getFloatAttribute(c.node, 'value_float');
      if (f !== undefined) return [f];
      return getFloatsAttribute(c.node, 'value_floats');
    },
  ],
  [
    'Shape',
    (c) => {
      const x = c.dims(0);
      if (x === undefined) return undefined;
      const [start, end] = shapeRange(c, x.length);
      return x.slice(start, Math.max(start, end));
    },
  ],
  [
    'Size',
    (c) => {
      const x = c.dims(0);
      const n = x === undefined ? null : product(x);
      return n === null ? undefined : [n];
    },
  ],
  ['Identity', (c) => c.value(0)],
  ['Reshape', (c, out) => (out?.dims !== undefined && out.dims.length <= 1 ? c.value(0) : undefined)],
  ['Squeeze', (c, out) => (out?.dims !== undefined && out.dims.length <= 1 ? c.value(0) : undefined)],
  ['Unsqueeze', (c, out) => (out?.dims !== undefined && out.dims.length <= 1 ? c.value(0) : undefined)],
  ['Flatten', (c, out) => (out?.dims !== undefined && out.dims[0] === 1 ? c.value(0) : undefined)],
  [
    'Cast',
    (c) => {
      const v = c.value(0);
      const to = getIntAttribute(c.node, 'to', DataType.UNDEFINED);
      if (v === undefined) return undefined;
      if (!isInteger(to)) return v.every((d) => typeof d === 'number') ? v : undefined;
      if (to === DataType.BOOL) return v.map((d) => (typeof d === 'number' ? Number(d !== 0) : null));
      return v.map((d) => (typeof d === 'number' ? Math.trunc(d) : isInteger(c.type(0)) ? d : null));
    },
  ],
  [
    'Gather',
    (c) => {
      const data = c.value(0);
      const indices = c.numbers(1);
      if (data === undefined || indices === undefined || (c.dims(0)?.length ?? 0) !== 1) return undefined;
      const out: Dim[] = [];
      for (const i of indices) {
        const v = data[i < 0 ? i + data.length : i];
        if (v === undefined) return undefined;
        out.push(v);
      }
      return out;
    },
  ],
  [
    'Concat',
    (c) => {
      const parts = c.node.input.map((_, i) => c.value(i));
      return parts.every((p) => p !== undefined) ? (parts as Dim[][]).flat() : undefined;
    },
  ],
  [
    'Slice',
    (c) => {
      const v = c.value(0);
      const p = sliceParameters(c);
      if (v === undefined || p === undefined || p.starts.length !== 1 || (p.axes !== undefined && p.axes[0] !== 0 && p.axes[0] !== -1)) {
        return undefined;
      }
      const start = p.starts[0] as number;
      const end = p.ends[0] as number;
      const step = p.steps[0] ?? 1;
      const n = v.length;
      const length = sliceLength(n, start, end, step) as number;
      let s = start < 0 ? start + n : start;
      s = step > 0 ? Math.min(Math.max(s, 0), n) : Math.min(Math.max(s, 0), n - 1);
      return Array.from({ length }, (_, i) => v[s + i * step] ?? null);
    },
  ],
  [
    'ConstantOfShape',
    (c, out) => {
      const t = getTensorAttribute(c.node, 'value');
      const fill = t === undefined ? 0 : (constantValues(t)?.[0] ?? 0);
      const dims = out?.dims;
      if (dims === undefined || dims.length > 1) return undefined;
      const n = dims.length === 0 ? 1 : dims[0];
      return typeof n === 'number' && n <= MAX_TRACKED_VALUES ? new Array<Dim>(n).fill(fill) : undefined;
    },
  ],
  [
    'Range',
    (c, out) => {
      const start = c.numbers(0)?.[0];
      const delta = c.numbers(2)?.[0];
      const n = out?.dims?.[0];
      if (start === undefined || delta === undefined || typeof n !== 'number' || n > MAX_TRACKED_VALUES) return undefined;
      return Array.from({ length: n }, (_, i) => start + i * delta);
    },
  ],
  ['Add', elementwise((a, b) => a + b, (a, b) => (a === 0 ? b : b === 0 ? a : undefined))],
  ['Sub', elementwise((a, b) => a - b, (a, b) => (b === 0 ? a : undefined))],
  ['Mul', elementwise((a, b) => a * b, (a, b) => (a === 1 ? b : b === 1 ? a : undefined))],
  ['Div', elementwise((a, b) => (b === 0 ? undefined : a / b), (a, b) => (b === 1 ? a : undefined))],
  ['Max', elementwise((a, b) => Math.max(a, b))],
  ['Min', elementwise((a, b) => Math.min(a, b))],
  ['Equal', elementwise((a, b) => Number(a === b), (a, b) => (a !== null && a === b ? 1 : undefined))],
  [
    'Where',
    (c, out) => {
      const cond = c.numbers(0);
      const x = c.value(1);
      const y = c.value(2);
      if (cond === undefined || x === undefined || y === undefined || out?.dims === undefined || out.dims.length > 1) return undefined;
      const n = Math.max(cond.length, x.length, y.length);
      const pick = (v: readonly Dim[], i: number): Dim => v[v.length === 1 ? 0 : i] ?? null;
      return Array.from({ length: n }, (_, i) => (pick(cond, i) ? pick(x, i) : pick(y, i)));
    },
  ],
]);
