/**
 * A float64 reference forward pass in plain JavaScript for the ops of the CNN fixtures (test
 * support, not exported): Conv, BatchNormalization (running or batch statistics), Relu,
 * MaxPool, GlobalAveragePool, Flatten, Gemm, Add, Identity. onnxruntime has no double Conv, so
 * whole-model finite differences need this to be accurate at small steps. Written from the
 * ONNX operator definitions, independently of the gradient rules it checks.
 */
import { getFloatAttribute, getIntAttribute, getIntsAttribute } from '../../attributes.js';
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
    case 'Add': {
      const b = inputs[1] as Float64Tensor;
      if (b.data.length !== x.data.length) throw new Error('the float64 reference adds equal shapes only');
      return { data: x.data.map((v, i) => v + (b.data[i] as number)), dims: x.dims };
    }
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
