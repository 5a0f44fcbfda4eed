import { ConfigError, SeededRandom } from '@open-autoglm/core';
import { arrayToTensor, type Dim, inferShapes, makeNode, type OnnxModel, OnnxGraph } from '@open-autoglm/onnx';

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
 * computed at each height x width: the output of every stage of a ResNet); or explicit pairs.
 */
export type FeatureMatching = 'none' | 'auto' | 'stages' | readonly FeaturePair[];

/** One distilled pair as set up for training. */
export interface MatchedFeature {
  /** The student tensor. */
  readonly student: string;
  readonly teacher: string;
  /** The tensor the mse term reads: the student tensor, or its projection to the teacher's width. */
  readonly distilled: string;
  /** The learned 1x1 projection added when the widths (axis 1) differ; removed from the exported model. */
  readonly projection?: { readonly node: string; readonly weight: string; readonly from: number; readonly to: number };
}

export interface FeatureSetup {
  /** The student (a copy) with the projections added; the student itself when nothing was added. */
  readonly student: OnnxModel;
  readonly pairs: readonly MatchedFeature[];
}

/**
 * Resolves `matching` to tensor pairs and adds a learned projection where a student tensor is
 * narrower or wider than its teacher tensor: a 1x1 Conv without bias for [N, C, ...] maps, a
 * MatMul for [N, D] vectors, initialized with seeded N(0, 1/C) weights. ConfigError when a tensor
 * is missing or the shapes differ in more than the channel axis.
 */
export function setUpFeaturePairs(student: OnnxModel, teacher: OnnxModel, matching: FeatureMatching, seed: number): FeatureSetup {
  if (matching === 'none') return { student, pairs: [] };
  const studentShapes = inferShapes(student.proto).shapes;
  const teacherShapes = inferShapes(teacher.proto).shapes;
  const requested =
    matching === 'auto' || matching === 'stages' ? automaticPairs(student, teacher, studentShapes, teacherShapes, matching) : matching;
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
      pairs.push({ student: pair.student, teacher: teacherName, distilled: pair.student });
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
  return { student: copy, pairs };
}

/** Removes the projections `setUpFeaturePairs` added (a trained copy of its student). */
export function removeProjections(model: OnnxModel, pairs: readonly MatchedFeature[]): void {
  const graph = model.graph;
  for (const pair of pairs) {
    if (pair.projection === undefined) continue;
    const node = graph.nodes.find((n) => n.name === pair.projection?.node);
    if (node !== undefined) graph.removeNode(node);
    graph.removeInitializer(pair.projection.weight);
  }
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
