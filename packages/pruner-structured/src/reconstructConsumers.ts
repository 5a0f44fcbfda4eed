import { DatasetError, SeededRandom } from '@open-autoglm/core';
import {
  arrayToTensor,
  getFloatAttribute,
  getIntAttribute,
  getIntsAttribute,
  getStringAttribute,
  type NodeProto,
  type OnnxGraph,
  type OnnxModel,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import { createSession, exposeTensors, type RuntimeSession } from '@open-autoglm/runtime';
import type { Tensor } from 'onnxruntime-node';
import type { DependencyAnalysis } from './analyzeDependencies.js';
import type { PruningPlan } from './planPruning.js';
import type { FeedBatch } from './recalibrateBatchNorm.js';

export interface ReconstructionOptions {
  /** Rows (output positions) gathered per layer, spread evenly over the batches (drawn without replacement); default 20000. */
  readonly maxRows?: number;
  /** Ridge added to the diagonal, relative to the mean diagonal of the Gram matrix; default 1e-6. */
  readonly ridge?: number;
  /** Seed of the positions drawn; default 0. */
  readonly seed?: number;
}

/** A layer whose weights were refitted, with the relative error of its output on the sampled rows. */
export interface ReconstructedLayer {
  readonly node: string;
  readonly opType: string;
  /** Least-squares unknowns per output (kept inputs times kernel taps, plus one for a bias). */
  readonly unknowns: number;
  readonly outputs: number;
  readonly rows: number;
  /** ||Y_pruned - Y_original|| / ||Y_original|| over the sampled rows, before and after the refit. */
  readonly errorBefore: number;
  readonly errorAfter: number;
}

/** A layer that reads removed units but was left as it is, and why. */
export interface SkippedLayer {
  readonly node: string;
  readonly opType: string;
  readonly reason: string;
}

export interface ReconstructionReport {
  readonly layers: readonly ReconstructedLayer[];
  readonly skipped: readonly SkippedLayer[];
}

const DEFAULT_MAX_ROWS = 20_000;
const DEFAULT_RIDGE = 1e-6;
/**
 * Fewer rows than this per unknown and the fit follows the calibration rows' noise (at one row
 * per unknown it reproduces them exactly and says nothing about new inputs): the layer is skipped.
 */
const MIN_ROWS_PER_UNKNOWN = 4;

/** How to turn one output position of a layer into a row of inputs and a row of targets. */
interface LayerProblem {
  readonly node: NodeProto;
  readonly label: string;
  readonly input: string;
  readonly output: string;
  readonly weight: string;
  readonly bias: string | undefined;
  /** Original output channels the pruned layer still produces, in order. */
  readonly keptOutputs: readonly number[];
  /** Inputs per output (without the bias). */
  readonly inputs: number;
  /** Weight element of (output o, input d). */
  readonly weightIndex: (o: number, d: number) => number;
  /** The rows of one batch, or why its tensors do not fit the weight. */
  readonly sampler: (x: Tensor, y: Tensor) => PositionSampler | string;
}

interface PositionSampler {
  readonly positions: number;
  /** Writes the inputs of `position` into `row` (length `inputs`) and its original targets into `target`. */
  fill(position: number, row: Float64Array, target: Float64Array): void;
}

/**
 * Training-free recovery after pruning by linear least squares (He et al. 2017, "Channel pruning
 * for accelerating very deep neural networks"; ThiNet, Luo et al. 2017): every layer that reads
 * removed units gets new weights over its kept inputs so that its output (its own tensor, before
 * any BatchNorm) on the calibration batches matches the original model's output at the channels
 * it keeps. Layers are refitted in topological order on inputs computed by the pruned model with
 * the layers before them already refitted, so each absorbs the error left upstream. Plain Conv
 * (group 1, 2-D, any kernel, stride, padding, dilation), Gemm, and MatMul with a constant weight
 * are refitted (bias included when there is one); other readers, and layers with fewer than 4
 * calibration rows per unknown, are listed as skipped with the reason. The normal equations are
 * accumulated and solved in float64 (Cholesky, a small ridge for conditioning); a refit that
 * would not lower the error on the sampled rows is not written.
 * Updates `pruned` in place; `original` is the model `analysis` and `plan` were made from.
 */
export async function reconstructConsumers(
  original: OnnxModel,
  pruned: OnnxModel,
  analysis: DependencyAnalysis,
  plan: PruningPlan,
  batches: readonly FeedBatch[],
  options: ReconstructionOptions = {},
): Promise<ReconstructionReport> {
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  const ridge = options.ridge ?? DEFAULT_RIDGE;
  const random = new SeededRandom(options.seed ?? 0);
  const skipped: SkippedLayer[] = [];
  const problems: LayerProblem[] = [];
  for (const node of readersOfRemovedUnits(original.graph, analysis, plan)) {
    const label = node.name || (node.output[0] ?? '');
    const prunedNode = pruned.graph.producerOf(node.output[0] ?? '');
    const problem = prunedNode === undefined ? 'the layer is not in the pruned model' : describeProblem(pruned.graph, prunedNode, outputKept(original.graph, analysis, plan, node));
    if (typeof problem === 'string') skipped.push({ node: label, opType: node.opType, reason: problem });
    else problems.push(problem);
  }
  if (problems.length === 0) return { layers: [], skipped };
  if (!batches.some((b) => (Object.values(b)[0]?.dims[0] ?? 0) > 0)) {
    throw new DatasetError('Cannot reconstruct the pruned layers: the calibration data has no samples. Give calibration data (--calib, or data.calib in the config).');
  }
  const name = original.source ?? 'model';
  const originalSession = await createSession(exposeTensors(original, problems.map((p) => p.output)).toBytes(), { device: 'cpu', threads: 1 }, { file: `${name} (reconstruction targets)` });
  const layers: ReconstructedLayer[] = [];
  try {
    for (const problem of problems) {
      const outcome = await refitLayer(problem, pruned, originalSession, batches, { maxRows, ridge, random: random.fork() });
      if (typeof outcome === 'string') skipped.push({ node: problem.label, opType: problem.node.opType, reason: outcome });
      else layers.push(outcome);
    }
  } finally {
    await originalSession.release();
  }
  return { layers, skipped };
}

/** Compute layers reading units the plan removes (directly, or through a concatenation), in topological order. */
function readersOfRemovedUnits(graph: OnnxGraph, analysis: DependencyAnalysis, plan: PruningPlan): NodeProto[] {
  const readers = new Set<NodeProto>();
  const collect = (members: DependencyAnalysis['groups'][number]['members']): void => {
    for (const member of members) {
      if (member.kind === 'tensor' && member.role === 'in') {
        const node = graph.nodes.find((n) => (member.node !== '' && n.name === member.node) || (member.node === '' && n.input.includes(member.tensor)));
        if (node !== undefined) readers.add(node);
      } else if (member.kind === 'conv-group') {
        const node = graph.nodes[member.nodeIndex];
        if (node !== undefined) readers.add(node);
      }
    }
  };
  for (const group of analysis.groups) {
    const kept = plan.get(group.name);
    if (kept !== undefined && kept.length < group.units) collect(group.members);
  }
  for (const concatenation of analysis.concatenations) {
    const reduced = concatenation.segments.some((s) => s.group !== undefined && plan.get(s.group) !== undefined);
    if (reduced) collect(concatenation.members);
  }
  return [...readers].sort((a, b) => graph.indexOfNode(a) - graph.indexOfNode(b));
}

/** The original output channels `node` keeps under `plan` (undefined: all of them). */
function outputKept(graph: OnnxGraph, analysis: DependencyAnalysis, plan: PruningPlan, node: NodeProto): number[] | undefined {
  for (const group of analysis.groups) {
    const kept = plan.get(group.name);
    if (kept === undefined) continue;
    for (const member of group.members) {
      if (member.kind !== 'tensor' || member.role !== 'out') continue;
      const sameNode = member.node !== '' ? member.node === node.name : graph.constantValue(node.input[1] ?? '') === graph.constantValue(member.tensor);
      if (!sameNode) continue;
      const perUnit = Math.round(member.perBase * group.unitSize);
      return kept.flatMap((unit) => Array.from({ length: perUnit }, (_, j) => unit * perUnit + j));
    }
  }
  return undefined;
}

/** The least-squares problem of one pruned layer, or why it is not refitted. */
function describeProblem(graph: OnnxGraph, node: NodeProto, keptOriginal: number[] | undefined): LayerProblem | string {
  const label = node.name || (node.output[0] ?? '');
  if (node.opType !== 'Conv' && node.opType !== 'Gemm' && node.opType !== 'MatMul') return `${node.opType} layers are not refitted (only Conv, Gemm and MatMul with a constant weight)`;
  const groups = node.opType === 'Conv' ? getIntAttribute(node, 'group', 1) : 1;
  if (groups !== 1) return `grouped or depthwise Conv (group ${groups}): each output reads only its own channels, which pruning removes together with it; nothing to refit`;
  const weightName = node.input[1] ?? '';
  const weight = graph.getInitializer(weightName);
  if (weight === undefined) return `its weight "${weightName}" is not an initializer (an activation or a Constant node), so there is nothing to refit`;
  if (graph.consumersOf(weightName).length > 1) return `its weight "${weightName}" is shared with other nodes; refitting it for this layer would change them`;
  const dims = tensorDims(weight);
  const input = node.input[0] ?? '';
  const output = node.output[0] ?? '';
  const biasName = node.input[2] !== undefined && node.input[2] !== '' ? node.input[2] : undefined;
  const outputAxisSize = node.opType === 'Conv' ? dims[0] : node.opType === 'Gemm' && getIntAttribute(node, 'transB', 0) === 1 ? dims[0] : dims[1];
  const keptOutputs = keptOriginal ?? Array.from({ length: outputAxisSize ?? 0 }, (_, i) => i);
  if (keptOutputs.length !== outputAxisSize) return `its weight has ${String(outputAxisSize)} outputs where the plan keeps ${keptOutputs.length}`;
  const bias = biasName === undefined ? undefined : graph.getInitializer(biasName);
  if (biasName !== undefined && (bias === undefined || tensorToArray(bias).length !== keptOutputs.length || graph.consumersOf(biasName).length > 1)) {
    return `its bias "${biasName}" is not an unshared initializer with one value per output`;
  }
  if (node.opType === 'Conv') {
    if (dims.length !== 4) return `only 2-D convolutions are refitted (weight of rank ${dims.length})`;
    const [, inChannels, kh, kw] = dims as [number, number, number, number];
    const inputs = inChannels * kh * kw;
    const strides = getIntsAttribute(node, 'strides', [1, 1]);
    const dilations = getIntsAttribute(node, 'dilations', [1, 1]);
    const autoPad = getStringAttribute(node, 'auto_pad', 'NOTSET');
    const explicitPads = getIntsAttribute(node, 'pads', [0, 0, 0, 0]);
    return {
      node, label, input, output, weight: weightName, bias: biasName, keptOutputs, inputs,
      weightIndex: (o, d) => o * inputs + d,
      sampler: (x, y) => {
        const [n, c, h, w] = x.dims as [number, number, number, number];
        const [, yc, oh, ow] = y.dims as [number, number, number, number];
        if (c !== inChannels) return `its input has ${c} channels where its weight reads ${inChannels}`;
        const [sh, sw] = strides as [number, number];
        const [dh, dw] = dilations as [number, number];
        const padFor = (size: number, out: number, stride: number, dilation: number, kernel: number, upper: boolean): number => {
          if (autoPad === 'VALID') return 0;
          if (autoPad === 'NOTSET') return upper ? (explicitPads[0] as number) : (explicitPads[1] as number);
          const total = Math.max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size);
          return autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
        };
        const top = autoPad === 'NOTSET' ? (explicitPads[0] as number) : padFor(h, oh, sh, dh, kh, true);
        const left = autoPad === 'NOTSET' ? (explicitPads[1] as number) : padFor(w, ow, sw, dw, kw, false);
        const xs = x.data as Float32Array;
        const ys = y.data as Float32Array;
        return {
          positions: n * oh * ow,
          fill(position, row, target) {
            const s = Math.floor(position / (oh * ow));
            const within = position - s * oh * ow;
            const i = Math.floor(within / ow);
            const j = within - i * ow;
            let d = 0;
            for (let ch = 0; ch < c; ch++) {
              const base = (s * c + ch) * h;
              for (let a = 0; a < kh; a++) {
                const r = i * sh - top + a * dh;
                for (let b = 0; b < kw; b++, d++) {
                  const q = j * sw - left + b * dw;
                  row[d] = r >= 0 && r < h && q >= 0 && q < w ? (xs[(base + r) * w + q] as number) : 0;
                }
              }
            }
            for (let o = 0; o < keptOutputs.length; o++) target[o] = ys[((s * yc + (keptOutputs[o] as number)) * oh + i) * ow + j] as number;
          },
        };
      },
    };
  }
  // Gemm or MatMul: one row per sample (or token).
  if (dims.length !== 2) return `its weight has rank ${dims.length}, not 2`;
  const transposed = node.opType === 'Gemm' && getIntAttribute(node, 'transB', 0) === 1;
  if (node.opType === 'Gemm') {
    if (getIntAttribute(node, 'transA', 0) !== 0) return 'Gemm with transA = 1 is not refitted';
    if (getFloatAttribute(node, 'alpha', 1) !== 1 || getFloatAttribute(node, 'beta', 1) !== 1) return 'Gemm with alpha or beta other than 1 is not refitted';
  }
  const inputs = transposed ? (dims[1] as number) : (dims[0] as number);
  const outputs = keptOutputs.length;
  return {
    node, label, input, output, weight: weightName, bias: biasName, keptOutputs, inputs,
    weightIndex: transposed ? (o, d) => o * inputs + d : (o, d) => d * outputs + o,
    sampler: (x, y) => {
      const features = x.dims[x.dims.length - 1] as number;
      const originalOutputs = y.dims[y.dims.length - 1] as number;
      if (features !== inputs) return `its input has ${features} features where its weight reads ${inputs}`;
      const xs = x.data as Float32Array;
      const ys = y.data as Float32Array;
      return {
        positions: xs.length / features,
        fill(position, row, target) {
          for (let d = 0; d < inputs; d++) row[d] = xs[position * features + d] as number;
          for (let o = 0; o < outputs; o++) target[o] = ys[position * originalOutputs + (keptOutputs[o] as number)] as number;
        },
      };
    },
  };
}

/** Gathers the normal equations of one layer, solves them and writes the weights (or says why not). */
async function refitLayer(
  problem: LayerProblem,
  pruned: OnnxModel,
  originalSession: RuntimeSession,
  batches: readonly FeedBatch[],
  settings: { maxRows: number; ridge: number; random: SeededRandom },
): Promise<ReconstructedLayer | string> {
  const graph = pruned.graph;
  const hasBias = problem.bias !== undefined;
  const size = problem.inputs + (hasBias ? 1 : 0);
  const outputs = problem.keptOutputs.length;
  const gram = new Float64Array(size * size);
  const cross = new Float64Array(size * outputs);
  let targetSquares = 0;
  let rows = 0;
  const row = new Float64Array(size);
  const target = new Float64Array(outputs);
  if (hasBias) row[size - 1] = 1;
  const usable = batches.filter((b) => (Object.values(b)[0]?.dims[0] ?? 0) > 0);
  const rowsPerBatch = Math.max(1, Math.ceil(settings.maxRows / usable.length));
  const session = await createSession(exposeTensors(pruned, [problem.input]).toBytes(), { device: 'cpu', threads: 1 }, { file: `${pruned.source ?? 'pruned model'} (input of ${problem.label})` });
  try {
    for (const feeds of usable) {
      const x = (await session.run({ ...feeds }, [problem.input]))[problem.input];
      const y = (await originalSession.run({ ...feeds }, [problem.output]))[problem.output];
      if (x === undefined || y === undefined || x.type !== 'float32' || y.type !== 'float32') return 'its input or output is not a float32 tensor';
      const sampler = problem.sampler(x, y);
      if (typeof sampler === 'string') return sampler;
      const take = Math.min(rowsPerBatch, sampler.positions);
      // All positions when they fit the budget, else a seeded draw without replacement.
      const order = take === sampler.positions ? undefined : settings.random.permutation(sampler.positions);
      for (let t = 0; t < take; t++) {
        sampler.fill(order === undefined ? t : (order[t] as number), row, target);
        for (let a = 0; a < size; a++) {
          const ra = row[a] as number;
          if (ra === 0) continue;
          const base = a * size;
          for (let b = a; b < size; b++) gram[base + b] = (gram[base + b] as number) + ra * (row[b] as number);
          const crossBase = a * outputs;
          for (let o = 0; o < outputs; o++) cross[crossBase + o] = (cross[crossBase + o] as number) + ra * (target[o] as number);
        }
        for (let o = 0; o < outputs; o++) targetSquares += (target[o] as number) ** 2;
        rows++;
      }
    }
  } finally {
    await session.release();
  }
  if (rows < MIN_ROWS_PER_UNKNOWN * size) {
    return `only ${rows} calibration rows for ${size} unknowns per output (at least ${MIN_ROWS_PER_UNKNOWN} per unknown needed): give more calibration samples`;
  }
  for (let a = 0; a < size; a++) for (let b = 0; b < a; b++) gram[a * size + b] = gram[b * size + a] as number;
  if (!(targetSquares > 0)) return 'its original output is zero on the calibration rows';
  const weightTensor = graph.getInitializer(problem.weight);
  if (weightTensor === undefined) return `its weight "${problem.weight}" disappeared`;
  const weightValues = Float32Array.from(tensorToArray(weightTensor) as Float32Array);
  const biasTensor = problem.bias === undefined ? undefined : graph.getInitializer(problem.bias);
  const biasValues = biasTensor === undefined ? undefined : Float32Array.from(tensorToArray(biasTensor) as Float32Array);
  const current = new Float64Array(size * outputs);
  for (let o = 0; o < outputs; o++) {
    for (let d = 0; d < problem.inputs; d++) current[d * outputs + o] = weightValues[problem.weightIndex(o, d)] as number;
    if (biasValues !== undefined) current[(size - 1) * outputs + o] = biasValues[o] as number;
  }
  let diagonal = 0;
  for (let d = 0; d < problem.inputs; d++) diagonal += gram[d * size + d] as number;
  if (!(diagonal > 0)) return 'its kept inputs are zero on the calibration rows';
  const regularized = Float64Array.from(gram);
  // The ridge leaves the bias free: only the weights' scale matters for conditioning.
  const lambda = (settings.ridge * diagonal) / problem.inputs;
  for (let d = 0; d < problem.inputs; d++) regularized[d * size + d] = (regularized[d * size + d] as number) + lambda;
  const solution = solveSymmetricPositiveDefinite(regularized, cross, size, outputs);
  if (solution === undefined) return 'the normal equations are singular even with the ridge (inputs constant or collinear on the calibration rows)';
  const errorBefore = relativeResidual(gram, cross, targetSquares, current, size, outputs);
  const errorAfter = relativeResidual(gram, cross, targetSquares, solution, size, outputs);
  if (!(errorAfter < errorBefore)) return `the refit would not lower the output error on the calibration rows (${errorBefore.toPrecision(3)} -> ${errorAfter.toPrecision(3)})`;
  for (let o = 0; o < outputs; o++) {
    for (let d = 0; d < problem.inputs; d++) weightValues[problem.weightIndex(o, d)] = solution[d * outputs + o] as number;
    if (biasValues !== undefined) biasValues[o] = solution[(size - 1) * outputs + o] as number;
  }
  graph.setInitializer(arrayToTensor(problem.weight, weightValues, tensorDims(weightTensor)));
  if (biasTensor !== undefined && biasValues !== undefined && problem.bias !== undefined) graph.setInitializer(arrayToTensor(problem.bias, biasValues, tensorDims(biasTensor)));
  graph.invalidate();
  return { node: problem.label, opType: problem.node.opType, unknowns: size, outputs, rows, errorBefore, errorAfter };
}

/** ||X W - Y|| / ||Y|| from the Gram matrix G = X'X, C = X'Y and ||Y||^2 (W is size x outputs). */
function relativeResidual(gram: Float64Array, cross: Float64Array, targetSquares: number, weights: Float64Array, size: number, outputs: number): number {
  let squares = targetSquares;
  for (let o = 0; o < outputs; o++) {
    for (let a = 0; a < size; a++) {
      const wa = weights[a * outputs + o] as number;
      if (wa === 0) continue;
      let gw = 0;
      for (let b = 0; b < size; b++) gw += (gram[a * size + b] as number) * (weights[b * outputs + o] as number);
      squares += wa * gw - 2 * wa * (cross[a * outputs + o] as number);
    }
  }
  return Math.sqrt(Math.max(0, squares) / targetSquares);
}

/**
 * Solves A X = B for a symmetric positive definite `a` (n x n, row-major) and `b` (n x m) by
 * Cholesky factorization A = L L', in float64. Undefined when A is not positive definite.
 */
export function solveSymmetricPositiveDefinite(a: Float64Array, b: Float64Array, n: number, m: number): Float64Array | undefined {
  const lower = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j] as number;
      for (let k = 0; k < j; k++) sum -= (lower[i * n + k] as number) * (lower[j * n + k] as number);
      if (i === j) {
        if (!(sum > 0)) return undefined;
        lower[i * n + i] = Math.sqrt(sum);
      } else {
        lower[i * n + j] = sum / (lower[j * n + j] as number);
      }
    }
  }
  const x = Float64Array.from(b);
  for (let c = 0; c < m; c++) {
    // Forward substitution L z = b, then back substitution L' x = z, column by column.
    for (let i = 0; i < n; i++) {
      let sum = x[i * m + c] as number;
      for (let k = 0; k < i; k++) sum -= (lower[i * n + k] as number) * (x[k * m + c] as number);
      x[i * m + c] = sum / (lower[i * n + i] as number);
    }
    for (let i = n - 1; i >= 0; i--) {
      let sum = x[i * m + c] as number;
      for (let k = i + 1; k < n; k++) sum -= (lower[k * n + i] as number) * (x[k * m + c] as number);
      x[i * m + c] = sum / (lower[i * n + i] as number);
    }
  }
  return x;
}

/** The reconstruction as report JSON: refitted layers with their output errors, skipped layers with the reason. */
export function reconstructionJson(report: ReconstructionReport): { reconstructed: Array<Record<string, string | number>>; reconstructionSkipped: Array<Record<string, string>> } {
  return {
    reconstructed: report.layers.map((l) => ({ node: l.node, opType: l.opType, unknowns: l.unknowns, outputs: l.outputs, rows: l.rows, errorBefore: l.errorBefore, errorAfter: l.errorAfter })),
    reconstructionSkipped: report.skipped.map((s) => ({ node: s.node, opType: s.opType, reason: s.reason })),
  };
}
