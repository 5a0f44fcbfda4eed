/**
 * A float64 reference forward pass in plain JavaScript for the ops of the fixture models (test
 * support, not exported): Conv, BatchNormalization (running or batch statistics), Relu,
 * MaxPool, GlobalAveragePool, Flatten, Gemm, numpy-broadcast Add/Sub/Mul/Div/Equal, MatMul,
 * Reshape, Transpose, Unsqueeze, Gather, LayerNormalization, Softmax, Erf, Tanh, Cast,
 * Constant, Identity. onnxruntime has no double Conv or Erf, so whole-model finite differences
 * need this to be accurate at small steps. Written from the ONNX operator definitions,
 * independently of the gradient rules it checks.
 */
import { getFloatAttribute, getIntAttribute, getIntsAttribute, getTensorAttribute } from '../../attributes.js';
import { OnnxGraph } from '../../OnnxGraph.js';
import type { ModelProto, NodeProto } from '../../proto.js';
import { tensorDims, tensorToArray } from '../../tensor.js';

export interface Float64Tensor {
  readonly data: Float64Array;
  readonly dims: readonly number[];
}

/**
 * Runs the main graph of `model` in float64 and returns every tensor. `feeds` gives the graph
 * inputs and may override initializers (a perturbed parameter). With `batchStatistics`,
 * BatchNormalization normalizes with the batch mean and biased variance (training mode).
 */
export function evaluateFloat64(
  model: ModelProto,
  feeds: ReadonlyMap<string, Float64Tensor>,
  batchStatistics = false,
): Map<string, Float64Tensor> {
  const graph = model.graph;
  if (graph === undefined) throw new Error('model has no graph');
  const values = new Map<string, Float64Tensor>();
  for (const tensor of graph.initializer) {
    values.set(tensor.name, { data: Float64Array.from(tensorToArray(tensor) as Float32Array), dims: tensorDims(tensor) });
  }
  for (const [name, tensor] of feeds) values.set(name, tensor);
  const get = (name: string | undefined): Float64Tensor => {
    const value = name === undefined ? undefined : values.get(name);
    if (value === undefined) throw new Error(`no value for ${String(name)}`);
    return value;
  };
  for (const node of new OnnxGraph(graph).topologicalOrder()) {
    // A fed node output (a parameter read through an Identity) replaces the node.
    if (feeds.has(node.output[0] as string)) continue;
    const inputs = node.input.map((name) => (name === '' ? undefined : get(name)));
    values.set(node.output[0] as string, evaluateNode(node, inputs, batchStatistics));
  }
  return values;
}

function evaluateNode(node: NodeProto, inputs: readonly (Float64Tensor | undefined)[], batchStatistics: boolean): Float64Tensor {
  const x = inputs[0] as Float64Tensor;
  switch (node.opType) {
    case 'Identity':
      return x;
    case 'Relu':
      return { data: x.data.map((v) => Math.max(v, 0)), dims: x.dims };
    case 'Flatten': {
      const axis = getIntAttribute(node, 'axis', 1);
      const outer = x.dims.slice(0, axis).reduce((a, b) => a * b, 1);
      return { data: x.data, dims: [outer, x.data.length / outer] };
    }
    case 'Add':
      return broadcast(x, inputs[1] as Float64Tensor, (u, v) => u + v);
    case 'Sub':
      return broadcast(x, inputs[1] as Float64Tensor, (u, v) => u - v);
    case 'Mul':
      return broadcast(x, inputs[1] as Float64Tensor, (u, v) => u * v);
    case 'Div':
      return broadcast(x, inputs[1] as Float64Tensor, (u, v) => u / v);
    case 'Equal':
      return broadcast(x, inputs[1] as Float64Tensor, (u, v) => (u === v ? 1 : 0));
    case 'Cast':
      // Values are already numbers; the fixtures cast bool masks to float.
      return x;
    case 'Constant': {
      const value = getTensorAttribute(node, 'value');
      if (value === undefined) throw new Error('the float64 reference reads Constant value tensors only');
      return { data: Float64Array.from(tensorToArray(value) as ArrayLike<number | bigint>, Number), dims: tensorDims(value) };
    }
    case 'Tanh':
      return { data: x.data.map(Math.tanh), dims: x.dims };
    case 'Erf':
      return { data: x.data.map(erf), dims: x.dims };
    case 'Unsqueeze': {
      const axes = Array.from((inputs[1] as Float64Tensor).data);
      const rank = x.dims.length + axes.length;
      const normalized = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
      const dims: number[] = [];
      let next = 0;
      for (let i = 0; i < rank; i++) dims.push(normalized.has(i) ? 1 : (x.dims[next++] as number));
      return { data: x.data, dims };
    }
    case 'Reshape': {
      const target = Array.from((inputs[1] as Float64Tensor).data).map((d, i) => (d === 0 ? (x.dims[i] as number) : d));
      const known = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
      return { data: x.data, dims: target.map((d) => (d === -1 ? x.data.length / known : d)) };
    }
    case 'Transpose':
      return transpose(x, getIntsAttribute(node, 'perm', x.dims.map((_, i) => x.dims.length - 1 - i)));
    case 'MatMul':
      return matMul(x, inputs[1] as Float64Tensor);
    case 'Gather':
      return gather(x, inputs[1] as Float64Tensor, getIntAttribute(node, 'axis', 0));
    case 'Softmax':
      return softmax(x, getIntAttribute(node, 'axis', -1));
    case 'LayerNormalization':
      return layerNormalization(x, inputs[1] as Float64Tensor, inputs[2], getIntAttribute(node, 'axis', -1), getFloatAttribute(node, 'epsilon', 1e-5));
    case 'Gemm':
      return gemm(node, x, inputs[1] as Float64Tensor, inputs[2]);
    case 'Conv':
      return conv(node, x, inputs[1] as Float64Tensor, inputs[2]);
    case 'MaxPool':
      return maxPool(node, x);
    case 'GlobalAveragePool': {
      const [n, c, h, w] = x.dims as [number, number, number, number];
      const out = new Float64Array(n * c);
      for (let i = 0; i < n * c; i++) {
        let sum = 0;
        for (let j = 0; j < h * w; j++) sum += x.data[i * h * w + j] as number;
        out[i] = sum / (h * w);
      }
      return { data: out, dims: [n, c, 1, 1] };
    }
    case 'BatchNormalization':
      return batchNormalization(node, inputs as Float64Tensor[], batchStatistics);
    default:
      throw new Error(`the float64 reference has no ${node.opType}`);
  }
}

function stridesOf(dims: readonly number[]): number[] {
  const strides = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) strides[i] = (strides[i + 1] as number) * (dims[i + 1] as number);
  return strides;
}

/** Offsets into a tensor of `dims` broadcast to `outDims`, for every position of `outDims`. */
function broadcastOffsets(dims: readonly number[], outDims: readonly number[]): Int32Array {
  const size = outDims.reduce((a, b) => a * b, 1);
  const offsets = new Int32Array(size);
  const shift = outDims.length - dims.length;
  const strides = stridesOf(dims);
  const outStrides = stridesOf(outDims);
  for (let i = 0; i < size; i++) {
    let offset = 0;
    for (let axis = shift; axis < outDims.length; axis++) {
      const dim = dims[axis - shift] as number;
      if (dim === 1) continue;
      const coordinate = Math.floor(i / (outStrides[axis] as number)) % (outDims[axis] as number);
      offset += coordinate * (strides[axis - shift] as number);
    }
    offsets[i] = offset;
  }
  return offsets;
}

function broadcastDims(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[i - rank + a.length] ?? 1;
    const db = b[i - rank + b.length] ?? 1;
    return da === 1 ? db : da;
  });
}

function broadcast(a: Float64Tensor, b: Float64Tensor, f: (u: number, v: number) => number): Float64Tensor {
  const dims = broadcastDims(a.dims, b.dims);
  const ia = broadcastOffsets(a.dims, dims);
  const ib = broadcastOffsets(b.dims, dims);
  const out = new Float64Array(ia.length);
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[ia[i] as number] as number, b.data[ib[i] as number] as number);
  return { data: out, dims };
}

function transpose(x: Float64Tensor, perm: readonly number[]): Float64Tensor {
  const dims = perm.map((p) => x.dims[p] as number);
  const inStrides = stridesOf(x.dims);
  const outStrides = stridesOf(dims);
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    let offset = 0;
    for (let axis = 0; axis < dims.length; axis++) {
      offset += (Math.floor(i / (outStrides[axis] as number)) % (dims[axis] as number)) * (inStrides[perm[axis] as number] as number);
    }
    out[i] = x.data[offset] as number;
  }
  return { data: out, dims };
}

/** numpy matmul for operands of rank >= 2 with broadcast batch dims. */
function matMul(a: Float64Tensor, b: Float64Tensor): Float64Tensor {
  const [m, k] = a.dims.slice(-2) as [number, number];
  const n = b.dims[b.dims.length - 1] as number;
  const batch = broadcastDims(a.dims.slice(0, -2), b.dims.slice(0, -2));
  const ia = broadcastOffsets(a.dims.slice(0, -2), batch);
  const ib = broadcastOffsets(b.dims.slice(0, -2), batch);
  const out = new Float64Array(ia.length * m * n);
  for (let t = 0; t < ia.length; t++) {
    const aBase = (ia[t] as number) * m * k;
    const bBase = (ib[t] as number) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += (a.data[aBase + i * k + p] as number) * (b.data[bBase + p * n + j] as number);
        out[(t * m + i) * n + j] = sum;
      }
    }
  }
  return { data: out, dims: [...batch, m, n] };
}

function gather(data: Float64Tensor, indices: Float64Tensor, axis: number): Float64Tensor {
  const a = axis < 0 ? axis + data.dims.length : axis;
  const outer = data.dims.slice(0, a).reduce((x, y) => x * y, 1);
  const size = data.dims[a] as number;
  const inner = data.dims.slice(a + 1).reduce((x, y) => x * y, 1);
  const out = new Float64Array(outer * indices.data.length * inner);
  for (let o = 0; o < outer; o++) {
    indices.data.forEach((raw, j) => {
      const index = raw < 0 ? raw + size : raw;
      out.set(data.data.subarray((o * size + index) * inner, (o * size + index + 1) * inner), (o * indices.data.length + j) * inner);
    });
  }
  return { data: out, dims: [...data.dims.slice(0, a), ...indices.dims, ...data.dims.slice(a + 1)] };
}

function softmax(x: Float64Tensor, axis: number): Float64Tensor {
  const a = axis < 0 ? axis + x.dims.length : axis;
  const size = x.dims[a] as number;
  const inner = x.dims.slice(a + 1).reduce((p, q) => p * q, 1);
  const outer = x.data.length / (size * inner);
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => (o * size + j) * inner + i;
      let max = -Infinity;
      for (let j = 0; j < size; j++) max = Math.max(max, x.data[at(j)] as number);
      let sum = 0;
      for (let j = 0; j < size; j++) sum += Math.exp((x.data[at(j)] as number) - max);
      for (let j = 0; j < size; j++) out[at(j)] = Math.exp((x.data[at(j)] as number) - max) / sum;
    }
  }
  return { data: out, dims: x.dims };
}

function layerNormalization(x: Float64Tensor, scale: Float64Tensor, bias: Float64Tensor | undefined, axis: number, epsilon: number): Float64Tensor {
  const a = axis < 0 ? axis + x.dims.length : axis;
  const size = x.dims.slice(a).reduce((p, q) => p * q, 1);
  const out = new Float64Array(x.data.length);
  for (let start = 0; start < x.data.length; start += size) {
    const row = x.data.subarray(start, start + size);
    const mean = row.reduce((p, v) => p + v, 0) / size;
    const variance = row.reduce((p, v) => p + (v - mean) ** 2, 0) / size;
    const r = 1 / Math.sqrt(variance + epsilon);
    for (let j = 0; j < size; j++) out[start + j] = ((row[j] as number) - mean) * r * (scale.data[j] as number) + (bias === undefined ? 0 : (bias.data[j] as number));
  }
  return { data: out, dims: x.dims };
}

/**
 * erf in float64: the Maclaurin series below 2.5 (terms stay under e^6.25, so about 13 digits
 * survive), the continued fraction of erfc above.
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  let value: number;
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    value = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + 2 / (z + ...)))))
    let t = z;
    for (let n = 120; n >= 1; n--) t = z + n / 2 / t;
    value = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / t;
  }
  return x < 0 ? -value : value;
}

function gemm(node: NodeProto, a: Float64Tensor, b: Float64Tensor, c: Float64Tensor | undefined): Float64Tensor {
  const transA = getIntAttribute(node, 'transA', 0) === 1;
  const transB = getIntAttribute(node, 'transB', 0) === 1;
  const alpha = getFloatAttribute(node, 'alpha', 1);
  const beta = getFloatAttribute(node, 'beta', 1);
  const [m, k] = (transA ? [a.dims[1], a.dims[0]] : a.dims) as [number, number];
  const n = (transB ? b.dims[0] : b.dims[1]) as number;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a.data[p * m + i] : a.data[i * k + p];
        const bv = transB ? b.data[j * k + p] : b.data[p * n + j];
        sum += (av as number) * (bv as number);
      }
      // C broadcasts as [n] or [m, n] in the fixtures.
      const cv = c === undefined ? 0 : c.data.length === n ? (c.data[j] as number) : (c.data[i * n + j] as number);
      out[i * n + j] = alpha * sum + beta * cv;
    }
  }
  return { data: out, dims: [m, n] };
}

function conv(node: NodeProto, x: Float64Tensor, w: Float64Tensor, bias: Float64Tensor | undefined): Float64Tensor {
  const [n, c, h, width] = x.dims as [number, number, number, number];
  const [m, cPerGroup, kh, kw] = w.dims as [number, number, number, number];
  const group = getIntAttribute(node, 'group', 1);
  const [sh, sw] = getIntsAttribute(node, 'strides', [1, 1]) as [number, number];
  const [dh, dw] = getIntsAttribute(node, 'dilations', [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = getIntsAttribute(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((width + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(n * m * oh * ow);
  const mPerGroup = m / group;
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < m; o++) {
      const g = Math.floor(o / mPerGroup);
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          let sum = bias === undefined ? 0 : (bias.data[o] as number);
          for (let ci = 0; ci < cPerGroup; ci++) {
            const channel = g * cPerGroup + ci;
            for (let ky = 0; ky < kh; ky++) {
              const iy = y * sh - pt + ky * dh;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = xo * sw - pl + kx * dw;
                if (ix < 0 || ix >= width) continue;
                sum += (x.data[((b * c + channel) * h + iy) * width + ix] as number) * (w.data[((o * cPerGroup + ci) * kh + ky) * kw + kx] as number);
              }
            }
          }
          out[((b * m + o) * oh + y) * ow + xo] = sum;
        }
      }
    }
  }
  return { data: out, dims: [n, m, oh, ow] };
}

function maxPool(node: NodeProto, x: Float64Tensor): Float64Tensor {
  const [n, c, h, w] = x.dims as [number, number, number, number];
  const [kh, kw] = getIntsAttribute(node, 'kernel_shape', []) as [number, number];
  const [sh, sw] = getIntsAttribute(node, 'strides', [1, 1]) as [number, number];
  const [pt, pl, pb, pr] = getIntsAttribute(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  if (getIntAttribute(node, 'ceil_mode', 0) !== 0) throw new Error('the float64 reference has no ceil_mode');
  const oh = Math.floor((h + pt + pb - kh) / sh) + 1;
  const ow = Math.floor((w + pl + pr - kw) / sw) + 1;
  const out = new Float64Array(n * c * oh * ow);
  for (let i = 0; i < n * c; i++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        let best = -Infinity;
        for (let ky = 0; ky < kh; ky++) {
          const iy = y * sh - pt + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = xo * sw - pl + kx;
            if (ix >= 0 && ix < w) best = Math.max(best, x.data[(i * h + iy) * w + ix] as number);
          }
        }
        out[(i * oh + y) * ow + xo] = best;
      }
    }
  }
  return { data: out, dims: [n, c, oh, ow] };
}

function batchNormalization(node: NodeProto, inputs: readonly Float64Tensor[], batchStatistics: boolean): Float64Tensor {
  const [x, scale, bias, runningMean, runningVar] = inputs as [Float64Tensor, Float64Tensor, Float64Tensor, Float64Tensor, Float64Tensor];
  const epsilon = getFloatAttribute(node, 'epsilon', 1e-5);
  const [n, c] = x.dims as [number, number];
  const spatial = x.data.length / (n * c);
  const out = new Float64Array(x.data.length);
  for (let ch = 0; ch < c; ch++) {
    let mean = runningMean.data[ch] as number;
    let variance = runningVar.data[ch] as number;
    if (batchStatistics) {
      let sum = 0;
      for (let b = 0; b < n; b++) for (let s = 0; s < spatial; s++) sum += x.data[(b * c + ch) * spatial + s] as number;
      mean = sum / (n * spatial);
      let squares = 0;
      for (let b = 0; b < n; b++) for (let s = 0; s < spatial; s++) squares += ((x.data[(b * c + ch) * spatial + s] as number) - mean) ** 2;
      variance = squares / (n * spatial);
    }
    const factor = (scale.data[ch] as number) / Math.sqrt(variance + epsilon);
    for (let b = 0; b < n; b++) {
      for (let s = 0; s < spatial; s++) {
        const i = (b * c + ch) * spatial + s;
        out[i] = ((x.data[i] as number) - mean) * factor + (bias.data[ch] as number);
      }
    }
  }
  return { data: out, dims: x.dims };
}

/**
 * The mean softmax cross-entropy of `model`'s first output against `labels`, in float64, with
 * the given parameters replaced (the loss a training step with a crossEntropy term computes).
 */
export function crossEntropyFloat64(
  model: ModelProto,
  inputs: ReadonlyMap<string, Float64Tensor>,
  labels: BigInt64Array,
  batchStatistics: boolean,
  parameters: ReadonlyMap<string, Float64Tensor> = new Map(),
): number {
  const feeds = new Map([...inputs, ...parameters]);
  const logits = evaluateFloat64(model, feeds, batchStatistics).get(model.graph?.output[0]?.name ?? '');
  if (logits === undefined) throw new Error('no logits');
  const [n, classes] = logits.dims as [number, number];
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.data.subarray(i * classes, (i + 1) * classes);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((acc, v) => acc + Math.exp(v - max), 0)) + max;
    loss += logSum - (row[Number(labels[i])] as number);
  }
  return loss / n;
}
