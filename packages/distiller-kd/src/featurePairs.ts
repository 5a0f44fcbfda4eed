import { ConfigError, SeededRandom } from '@open-autoglm/core';
import { arrayToTensor, DataType, type Dim, inferShapes, makeNode, type NodeProto, type OnnxModel, OnnxGraph, tensorToArray } from '@open-autoglm/onnx';

/** A student tensor and the teacher tensor it learns (default: the teacher tensor of the same name). */
export interface FeaturePair {
  readonly student: string;
  readonly teacher?: string;
}

/**
 * Which intermediate tensors are distilled (mean-squared error between student and teacher):
 * `none`; `auto`, the last 4-D feature map with a spatial extent that both models compute under
 * the same name with the same op (in a CNN, the map the classifier head pools; a pruned model
 * keeps its source's tensor names); `stages`, such a map for every resolution (the last one
 * computed at each height x width: the output of every stage of a ResNet); `pruned`, for a student
 * pruned from the teacher, every ReLU output of the student learns the teacher's same tensor
 * restricted to the channels the student kept (no projection: the pruned layers learn to
 * reconstruct what the original computed on those channels, which recovers a pruned model faster
 * than logits alone); `pruned-preactivation`, the same pairs one step earlier, on the inputs of
 * those ReLUs (BatchNorm or residual-sum outputs), both sides passed through the teacher's
 * per-channel margin ReLU `max(x, m)` (Heo et al. 2019, "A comprehensive overhaul of feature
 * distillation": `m` is the expected negative response of the channel, from its BatchNorm
 * scale and shift), so negative responses that the ReLU would discard are only matched down to
 * the margin; or explicit pairs.
 */
export type FeatureMatching = 'none' | 'auto' | 'stages' | 'pruned' | 'pruned-preactivation' | readonly FeaturePair[];

/** One distilled pair as set up for training. */
export interface MatchedFeature {
  /** The student tensor. */
  readonly student: string;
  readonly teacher: string;
  /** The tensor the mse term reads: the student tensor, or its projection to the teacher's width. */
  readonly distilled: string;
  /** `pruned` matching: the teacher channels (axis 1) the student's channels are, in order, when it kept fewer. */
  readonly keptChannels?: readonly number[];
  /** The learned 1x1 projection added when the widths (axis 1) differ; removed from the exported model. */
  readonly projection?: { readonly node: string; readonly weight: string; readonly from: number; readonly to: number };
  /**
   * `pruned-preactivation` matching: the per-channel margins `m`, and the student nodes computing
   * `Relu(student - m)` (= max(student, m) - m, the teacher side likewise) that the mse term
   * reads; removed from the exported model.
   */
  readonly margin?: { readonly nodes: readonly string[]; readonly values: string; readonly channels: number };
}

export interface FeatureSetup {
  /** The student (a copy) with the projections added; the student itself when nothing was added. */
  readonly student: OnnxModel;
  /** The teacher to run: a copy with the kept channels gathered (`pruned` matching), else the teacher itself. */
  readonly teacher: OnnxModel;
  readonly pairs: readonly MatchedFeature[];
}

/**
 * Resolves `matching` to tensor pairs and adds a learned projection where a student tensor is
 * narrower or wider than its teacher tensor: a 1x1 Conv without bias for [N, C, ...] maps, a
 * MatMul for [N, D] vectors, initialized with seeded N(0, 1/C) weights. ConfigError when a tensor
 * is missing or the shapes differ in more than the channel axis.
 */
export function setUpFeaturePairs(student: OnnxModel, originalTeacher: OnnxModel, matching: FeatureMatching, seed: number): FeatureSetup {
  if (matching === 'none') return { student, teacher: originalTeacher, pairs: [] };
  const studentShapes = inferShapes(student.proto).shapes;
  const pruned =
    matching === 'pruned' || matching === 'pruned-preactivation' ? keptChannelPairs(student, originalTeacher, matching === 'pruned-preactivation') : undefined;
  const teacher = pruned?.teacher ?? originalTeacher;
  const teacherShapes = inferShapes(teacher.proto).shapes;
  const requested =
    matching === 'auto' || matching === 'stages' ? automaticPairs(student, teacher, studentShapes, teacherShapes, matching) : (pruned?.pairs ?? (matching as readonly FeaturePair[]));
  if (requested.length === 0) throw new ConfigError('The feature pairs list is empty. Name at least one { student, teacher } pair, or use "none".');

  const copy = student.clone();
  const graph = copy.graph;
  const random = new SeededRandom(seed);
  const pairs: MatchedFeature[] = [];
  for (const pair of requested) {
    const teacherName = pair.teacher ?? pair.student;
    const studentDims = studentShapes.get(pair.student)?.dims;
    const teacherDims = teacherShapes.get(teacherName)?.dims;
    if (graph.producerOf(pair.student) === undefined || studentDims === undefined) {
      throw new ConfigError(
        `The student ${student.source ?? ''} has no intermediate tensor "${pair.student}" of known shape to distill. ` +
          'Name a node output of the student (autoglm inspect --layers lists them).',
        { file: student.source },
      );
    }
    if (teacher.graph.producerOf(teacherName) === undefined || teacherDims === undefined) {
      throw new ConfigError(
        `The teacher ${teacher.source ?? ''} has no intermediate tensor "${teacherName}" of known shape for student tensor "${pair.student}". ` +
          'Name the teacher tensor in the pair ({ student, teacher }).',
        { file: teacher.source },
      );
    }
    const sameExceptChannels =
      studentDims.length === teacherDims.length && studentDims.length >= 2 && studentDims.every((d, axis) => axis <= 1 || sameDim(d, teacherDims[axis]));
    if (!sameExceptChannels) {
      throw new ConfigError(
        `Cannot distill student tensor "${pair.student}" [${studentDims.join(', ')}] from teacher tensor "${teacherName}" [${teacherDims.join(', ')}]: ` +
          'the shapes may differ only in the channel axis (1). Pick tensors at the same resolution.',
      );
    }
    const from = studentDims[1];
    const to = teacherDims[1];
    if (sameDim(from, to)) {
      const keptChannels = pruned?.keptChannels.get(pair.student);
      const margins = pruned?.margins.get(pair.student);
      const margin = margins === undefined ? undefined : addMarginRelu(graph, pair.student, margins, studentDims.length);
      pairs.push({
        student: pair.student,
        teacher: teacherName,
        distilled: margin?.output ?? pair.student,
        ...(keptChannels === undefined ? {} : { keptChannels }),
        ...(margin === undefined ? {} : { margin: { nodes: margin.nodes, values: margin.values, channels: margins?.length ?? 0 } }),
      });
      continue;
    }
    if (typeof from !== 'number' || typeof to !== 'number') {
      throw new ConfigError(`The channel counts of "${pair.student}" (${String(from)}) and "${teacherName}" (${String(to)}) must be known to add a projection.`);
    }
    const weight = graph.uniqueName(`distill.projection.${pair.student}.weight`);
    const output = graph.uniqueName(`distill.projection.${pair.student}`);
    const nodeName = graph.uniqueName(`distill/projection/${pair.student}`);
    const values = Float32Array.from({ length: from * to }, () => random.nextNormal() / Math.sqrt(from));
    if (studentDims.length === 2) {
      // [N, from] x [from, to]; MatMul weights count as parameters, so the step trains them.
      graph.setInitializer(arrayToTensor(weight, transpose(values, to, from), [from, to]));
      graph.addNode(makeNode('MatMul', [pair.student, weight], [output], {}, nodeName));
    } else {
      const kernel = studentDims.slice(2).map(() => 1);
      graph.setInitializer(arrayToTensor(weight, values, [to, from, ...kernel]));
      graph.addNode(makeNode('Conv', [pair.student, weight], [output], { kernel_shape: kernel }, nodeName));
    }
    pairs.push({ student: pair.student, teacher: teacherName, distilled: output, projection: { node: nodeName, weight, from, to } });
  }
  return { student: copy, teacher, pairs };
}

/** Removes the projections and margin nodes `setUpFeaturePairs` added (a trained copy of its student). */
export function removeProjections(model: OnnxModel, pairs: readonly MatchedFeature[]): void {
  const graph = model.graph;
  const remove = (name: string): void => {
    const node = graph.nodes.find((n) => n.name === name);
    if (node !== undefined) graph.removeNode(node);
  };
  for (const pair of pairs) {
    if (pair.projection !== undefined) {
      remove(pair.projection.node);
      graph.removeInitializer(pair.projection.weight);
    }
    if (pair.margin !== undefined) {
      for (const node of pair.margin.nodes) remove(node);
      graph.removeInitializer(pair.margin.values);
    }
  }
}

/**
 * Heo et al.'s margin of a channel whose pre-activation is BatchNorm-shaped, N(shift, scale^2):
 * the expected value of its negative responses, E[x | x < 0] = shift - |scale| * pdf(shift / |scale|) / cdf(-shift / |scale|),
 * or -3 |scale| when negative responses are too rare (cdf < 0.001) for that to be meaningful
 * (their `get_margin_from_BN`).
 */
export function marginOfChannel(scale: number, shift: number): number {
  const sigma = Math.abs(scale);
  if (sigma === 0) return Math.min(shift, 0);
  const negativeShare = standardNormalCdf(-shift / sigma);
  if (negativeShare <= 0.001) return -3 * sigma;
  return shift - (sigma * Math.exp(-((shift / sigma) ** 2) / 2)) / Math.sqrt(2 * Math.PI) / negativeShare;
}

/** Phi(x) through erfc (W. J. Cody's rational approximation as in Numerical Recipes' erfc: |error| < 1.2e-7). */
function standardNormalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + z / 2);
  const erfc =
    t *
    Math.exp(
      -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Adds `Relu(tensor - margins)` (margins along axis 1 of a rank-`rank` tensor) to `graph`; returns its output, nodes and margin initializer. */
function addMarginRelu(graph: OnnxGraph, tensor: string, margins: Float32Array, rank: number): { output: string; nodes: string[]; values: string } {
  const values = graph.uniqueName(`distill.margin.${tensor}.values`);
  const shifted = graph.uniqueName(`distill.margin.${tensor}.shifted`);
  const output = graph.uniqueName(`distill.margin.${tensor}`);
  graph.setInitializer(arrayToTensor(values, margins, [1, margins.length, ...Array.from({ length: Math.max(0, rank - 2) }, () => 1)]));
  graph.addNode(makeNode('Sub', [tensor, values], [shifted], {}, shifted));
  graph.addNode(makeNode('Relu', [shifted], [output], {}, output));
  return { output, nodes: [shifted, output], values };
}

/**
 * `pruned` matching: for every ReLU output of the student that the teacher computes under the
 * same name, the teacher channels it keeps, found through the BatchNormalization the channels
 * come from (following Relu, Identity and Add back): pruning slices a BatchNorm's scale, so the
 * student's scale values are the teacher's at the kept channels, in order. Where the student kept
 * fewer channels, a copy of the teacher gathers them (an added Gather node) for the pair to read.
 */
function keptChannelPairs(
  student: OnnxModel,
  teacher: OnnxModel,
  preactivation: boolean,
): { teacher: OnnxModel; pairs: FeaturePair[]; keptChannels: Map<string, readonly number[]>; margins: Map<string, Float32Array> } {
  const copy = teacher.clone();
  const pairs: FeaturePair[] = [];
  const keptChannels = new Map<string, readonly number[]>();
  const margins = new Map<string, Float32Array>();
  const teacherShapes = preactivation ? inferShapes(teacher.proto).shapes : undefined;
  for (const node of student.graph.nodes) {
    const activation = node.output[0];
    const teacherRelu = activation === undefined ? undefined : teacher.graph.producerOf(activation);
    if (node.opType !== 'Relu' || activation === undefined || teacherRelu?.opType !== 'Relu') continue;
    const batchNorm = batchNormBehind(student.graph, activation);
    const scale = batchNorm?.input[1];
    const studentScale = scale === undefined ? undefined : initializerValues(student.graph, scale);
    const teacherScale = scale === undefined ? undefined : initializerValues(teacher.graph, scale);
    if (studentScale === undefined || teacherScale === undefined) continue;
    const kept = keptIndices(studentScale, teacherScale);
    if (kept === undefined) continue;
    const tensor = preactivation ? node.input[0] : activation;
    if (tensor === undefined || (preactivation && teacherRelu.input[0] !== tensor)) continue;
    let teacherTensor = tensor;
    if (kept.length < teacherScale.length) {
      const indices = copy.graph.uniqueName(`distill.kept.${tensor}.indices`);
      teacherTensor = copy.graph.uniqueName(`distill.kept.${tensor}`);
      copy.graph.setInitializer(arrayToTensor(indices, BigInt64Array.from(kept, (i) => BigInt(i)), [kept.length], DataType.INT64));
      copy.graph.addNode(makeNode('Gather', [tensor, indices], [teacherTensor], { axis: 1 }, teacherTensor));
      keptChannels.set(tensor, kept);
    }
    if (preactivation) {
      const shift = batchNorm?.input[2] === undefined ? undefined : initializerValues(teacher.graph, batchNorm.input[2]);
      const rank = teacherShapes?.get(tensor)?.dims?.length;
      if (shift === undefined || rank === undefined) continue;
      const channelMargins = Float32Array.from(kept, (channel) => marginOfChannel(teacherScale[channel] as number, shift[channel] as number));
      // The teacher's side of the pair, Relu(t - m); the student's is added with the same margins in setUpFeaturePairs.
      teacherTensor = addMarginRelu(copy.graph, teacherTensor, channelMargins, rank).output;
      margins.set(tensor, channelMargins);
    }
    pairs.push(teacherTensor === tensor ? { student: tensor } : { student: tensor, teacher: teacherTensor });
  }
  if (pairs.length === 0) {
    throw new ConfigError(
      'features: pruned found no ReLU output whose channels it could match to the teacher through a BatchNormalization scale (the student ' +
        'must be pruned from the teacher, with the same tensor names and its BatchNorm layers unfolded). Use auto, stages or named pairs.',
      { file: student.source },
    );
  }
  return { teacher: copy, pairs, keptChannels, margins };
}

/** The BatchNormalization `tensor`'s channels come from, through Relu, Identity and the first input of Add. */
function batchNormBehind(graph: OnnxGraph, tensor: string): NodeProto | undefined {
  let producer: NodeProto | undefined = graph.producerOf(tensor);
  while (producer !== undefined && ['Relu', 'Identity', 'Add'].includes(producer.opType)) {
    const input = producer.input[0];
    producer = input === undefined ? undefined : graph.producerOf(input);
  }
  return producer?.opType === 'BatchNormalization' ? producer : undefined;
}

function initializerValues(graph: OnnxGraph, name: string): Float32Array | undefined {
  const tensor = graph.getInitializer(name);
  const values = tensor === undefined ? undefined : tensorToArray(tensor);
  return values instanceof Float32Array ? values : undefined;
}

/** The teacher positions of the student's values, in increasing order (a pruned scale keeps the original order); undefined when they do not fit. */
function keptIndices(studentValues: Float32Array, teacherValues: Float32Array): number[] | undefined {
  const kept: number[] = [];
  let from = 0;
  for (const value of studentValues) {
    let index = from;
    while (index < teacherValues.length && !Object.is(teacherValues[index], value)) index++;
    if (index === teacherValues.length) return undefined;
    kept.push(index);
    from = index + 1;
  }
  return kept;
}

/** The last shared feature map (`auto`), or the last one of every resolution (`stages`), in graph order. */
function automaticPairs(
  student: OnnxModel,
  teacher: OnnxModel,
  studentShapes: ReadonlyMap<string, { dims: Dim[] | undefined }>,
  teacherShapes: ReadonlyMap<string, { dims: Dim[] | undefined }>,
  matching: 'auto' | 'stages',
): FeaturePair[] {
  const order = new OnnxGraph(student.proto.graph!).topologicalOrder();
  const byResolution = new Map<string, string>();
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    for (const output of node.output) {
      const dims = studentShapes.get(output)?.dims;
      const teacherDims = teacherShapes.get(output)?.dims;
      const producer = teacher.graph.producerOf(output);
      // A map with spatial extent: a globally pooled [N, C, 1, 1] tensor is the head's input, not a feature map.
      const spatial = dims?.length === 4 && !(dims[2] === 1 && dims[3] === 1);
      if (spatial && teacherDims?.length === 4 && producer?.opType === node.opType && sameDim(dims[2], teacherDims[2]) && sameDim(dims[3], teacherDims[3])) {
        const resolution = `${String(dims[2])}x${String(dims[3])}`;
        if (!byResolution.has(resolution)) byResolution.set(resolution, output);
      }
    }
    if (matching === 'auto' && byResolution.size > 0) break;
  }
  if (byResolution.size === 0) {
    throw new ConfigError(
      'Found no feature map (a 4-D tensor) that the student and the teacher both compute under the same name, so automatic feature ' +
        'matching has nothing to pair. Name the pairs ({ student, teacher }), or distill logits only (features: none).',
      { file: student.source },
    );
  }
  // Found from the end backwards; report them in graph order.
  return [...byResolution.values()].reverse().map((name) => ({ student: name }));
}

function sameDim(a: Dim | undefined, b: Dim | undefined): boolean {
  return a === b || (typeof a === 'string' && typeof b === 'string');
}

function transpose(values: Float32Array, rows: number, columns: number): Float32Array {
  const result = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) result[c * rows + r] = values[r * columns + c] as number;
  return result;
}
