import {
  countModelStats,
  type ModelStats,
  type Dim,
  describeNode,
  getIntAttribute,
  getIntsAttribute,
  inferShapes,
  isDefaultDomain,
  isParameterInput,
  type ModelProto,
  type NodeProto,
  OnnxGraph,
  elementCount,
  tensorDims,
  tensorToArray,
} from '@open-autoglm/onnx';
import { ModelFormatError } from '@open-autoglm/core';

/**
 * Where one group's channels live in a tensor: along `axis`, `perBase` consecutive indices per
 * base channel of the group (25 after a Flatten of 5x5 maps; 1/32 on the head axis of a
 * [batch, seq, heads, 32] Reshape, whose indices each span 32 base channels).
 */
interface ChannelAnnotation {
  readonly group: number;
  readonly axis: number;
  readonly perBase: number;
}

/** How a member tensor or attribute is rewritten when its group loses units. */
export type GroupMember =
  | {
      readonly kind: 'tensor';
      /** Initializer or Constant-node output holding the values (Identity aliases resolved). */
      readonly tensor: string;
      readonly axis: number;
      readonly perBase: number;
      /** `out`: weights producing the channels; `in`: weights reading them; `norm`: BN/IN scale. */
      readonly role: 'out' | 'in' | 'norm' | 'other';
      readonly node: string;
    }
  /** Entry `position` of the constant target shape of the Reshape at `nodeIndex` in `graph.node`. */
  | { readonly kind: 'reshape'; readonly nodeIndex: number; readonly position: number; readonly perBase: number }
  /** The `group` attribute of the depthwise Conv at `nodeIndex` in `graph.node`. */
  | { readonly kind: 'conv-group'; readonly nodeIndex: number; readonly perBase: number };

/** A set of coupled channels that must be pruned together (DepGraph's "group"), after unions. */
export interface DependencyGroup {
  /** Stable identifier: the name of the first layer (in topological order) producing the channels. */
  readonly name: string;
  /** What is pruned: conv channels, attention heads, or hidden neurons of Gemm/MatMul layers. */
  readonly kind: 'channels' | 'heads' | 'neurons';
  /** Prunable units (channels, heads, neurons). */
  readonly units: number;
  /** Base channels per unit (the head size for heads, 1 otherwise). */
  readonly unitSize: number;
  /** Nodes that produce the group's channels (Conv/Gemm/MatMul), in topological order. */
  readonly layers: readonly string[];
  /** Position of the first producing layer among the model's compute layers (0-based). */
  readonly index: number;
  readonly members: readonly GroupMember[];
  /** Why the group cannot be pruned (empty when it can): op type, node and reason. */
  readonly frozenReasons: readonly string[];
  /** Features for layer-wise strategies (see `ParameterDescriptor.features`). */
  readonly features: Readonly<Record<string, number | string>>;
}

/**
 * The channels of a Concat along the channel axis: not prunable on their own, they keep what the
 * groups of the concatenated inputs keep (inputs that come from no group keep everything).
 */
export interface ConcatenatedChannels {
  readonly name: string;
  readonly channels: number;
  readonly segments: ReadonlyArray<{ readonly group: string | undefined; readonly offset: number; readonly channels: number }>;
  readonly members: readonly GroupMember[];
}

/** A counted node's MACs and the groups whose kept fraction scales them. */
interface MacTerm {
  readonly macs: number;
  readonly groups: readonly number[];
}

/** A parameter tensor as `countModelStats` counts it, and the groups that slice it. */
interface ParamTerm {
  readonly elements: number;
  readonly groups: readonly number[];
}

/** The dependency analysis of one model: every group, and what predicts params/MACs of a plan. */
export interface DependencyAnalysis {
  readonly groups: readonly DependencyGroup[];
  /** Concat outputs whose channels follow the groups concatenated into them. */
  readonly concatenations: readonly ConcatenatedChannels[];
  readonly params: number;
  readonly macs: number;
  /** Params and MACs of the model pruned to `keptUnits` (group name -> kept units), exactly. */
  predict(keptUnits: ReadonlyMap<string, number>): { params: number; macs: number };
}

interface GroupState {
  parent: number;
  baseUnits: number;
  factor: number;
  members: GroupMember[];
  memberKeys: Set<string>;
  frozen: string[];
  layers: NodeProto[];
  firstLayerPosition: number;
  /** For the channels of a Concat along the channel axis: where each input's channels sit. */
  segments?: Array<{ group: number | undefined; offset: number; channels: number }>;
  /** The Concat node, for names and messages. */
  concat?: NodeProto;
}

const UNARY_ELEMENTWISE = new Set([
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Erf', 'Gelu', 'Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'HardSigmoid',
  'HardSwish', 'Mish', 'Abs', 'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Identity', 'Dropout', 'Cast', 'Clip', 'Floor',
  'Ceil', 'Round', 'Sign', 'ThresholdedRelu', 'Sin', 'Cos', 'IsNaN', 'Not',
]);
const BROADCAST_ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Equal', 'Greater', 'Less']);
const CHANNEL_POOLS = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);
const REDUCTIONS = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp']);

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

function isWhole(value: number): boolean {
  return Math.abs(value - Math.round(value)) < 1e-9;
}

/**
 * Finds the channel dependency groups of an ONNX graph (Torch-Pruning's DepGraph idea applied to
 * the graph itself). Channels are born at Conv/Gemm/MatMul layers with constant weights and
 * followed forward through BatchNorm, activations, pooling, per-channel constants, residual
 * Add/Mul (all branches join one group), Flatten/Reshape (a channel becomes a block of features;
 * a split into [heads, head size] makes heads the unit), Transpose and attention MatMuls, up to
 * the layers that read them (their input weights join the group). A group reaching an op without
 * a rule, a graph output, or an inconsistent layout is frozen with the reason; the rest prune.
 */
export function analyzeDependencies(model: ModelProto): DependencyAnalysis {
  return new DependencyAnalyzer(model).run();
}

class DependencyAnalyzer {
  private readonly view: OnnxGraph;
  private readonly groups: GroupState[] = [];
  private readonly annotations = new Map<string, ChannelAnnotation>();
  private readonly shapes: Map<string, Dim[] | undefined>;
  private readonly aliases = new Map<string, string>();
  private readonly ranks = new Map<string, number>();
  private readonly macTerms: Array<{ macs: number; groups: number[] }> = [];
  /** The nodes that registered each member tensor (`tensor@axis`): what may read it once sliced. */
  private readonly readers = new Map<string, Set<NodeProto>>();

  constructor(private readonly model: ModelProto) {
    if (model.graph === undefined) throw new ModelFormatError('The model has no graph, so there is nothing to prune. Re-export the model.');
    this.view = new OnnxGraph(model.graph);
    const bindings: Record<string, number> = {};
    for (const input of this.view.inputs) {
      const first = input.type?.value.case === 'tensorType' ? input.type.value.value.shape?.dim[0]?.value : undefined;
      if (first?.case === 'dimParam') bindings[first.value] = 1;
    }
    const inferred = inferShapes(model, { dims: bindings });
    this.shapes = new Map([...inferred.shapes].map(([name, info]) => [name, info.dims]));
  }

  run(): DependencyAnalysis {
    const order = this.view.topologicalOrder();
    for (const node of order) {
      const source = node.input[0];
      const output = node.output[0];
      if (node.opType === 'Identity' && source !== undefined && output !== undefined && this.view.isConstant(source)) {
        this.aliases.set(output, this.aliases.get(source) ?? source);
      }
    }
    const stats = countModelStats(this.model, { batch: 1 });
    order.forEach((node, position) => {
      const inputs = node.input.map((name) => (name === '' ? undefined : this.annotations.get(name)));
      const macs = stats.perNode[position]?.macs ?? 0;
      const macGroups: number[] = [];
      try {
        this.visit(node, position, inputs, macGroups);
      } catch (error) {
        if (!(error instanceof FreezeSignal)) throw error;
        for (const annotation of inputs) if (annotation !== undefined) this.freeze(annotation.group, `${describeNode(node, position)}: ${error.message}`);
      }
      if (macs > 0) {
        const outputAnnotation = this.annotations.get(node.output[0] ?? '');
        if (outputAnnotation !== undefined && !macGroups.includes(outputAnnotation.group)) macGroups.push(outputAnnotation.group);
        this.macTerms.push({ macs, groups: macGroups });
      }
      for (const output of node.output) {
        const annotation = this.annotations.get(output);
        if (annotation !== undefined && this.view.isGraphOutput(output)) {
          this.freeze(annotation.group, `${describeNode(node, position)}: its output "${output}" is a graph output, whose shape is part of the model's interface`);
        }
      }
    });
    return this.finish(stats);
  }

  // ------------------------------------------------------------------ groups

  private find(group: number): number {
    let root = group;
    while ((this.groups[root] as GroupState).parent !== root) root = (this.groups[root] as GroupState).parent;
    return root;
  }

  private state(group: number): GroupState {
    return this.groups[this.find(group)] as GroupState;
  }

  private newGroup(units: number, layer: NodeProto, position: number): number {
    const id = this.groups.length;
    this.groups.push({ parent: id, baseUnits: units, factor: 1, members: [], memberKeys: new Set(), frozen: [], layers: [layer], firstLayerPosition: position });
    return id;
  }

  private freeze(group: number, reason: string): void {
    const state = this.state(group);
    if (!state.frozen.includes(reason)) state.frozen.push(reason);
  }

  /** Merges two groups whose channels are the same (a residual join, a shared tensor). */
  private union(a: number, b: number, where: string): number {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return ra;
    const sa = this.groups[ra] as GroupState;
    const sb = this.groups[rb] as GroupState;
    if (sa.segments !== undefined || sb.segments !== undefined) {
      // Joining concatenated channels with another group would tie offsets across groups.
      sa.frozen.push(`${where}: joins concatenated channels with other channels`);
      sb.frozen.push(`${where}: joins concatenated channels with other channels`);
      return ra;
    }
    const [keep, drop] = sa.firstLayerPosition <= sb.firstLayerPosition ? [sa, sb] : [sb, sa];
    drop.parent = keep === sa ? ra : rb;
    keep.members.push(...drop.members);
    for (const key of drop.memberKeys) keep.memberKeys.add(key);
    keep.frozen.push(...drop.frozen.filter((r) => !keep.frozen.includes(r)));
    keep.layers.push(...drop.layers);
    if (sa.baseUnits !== sb.baseUnits) {
      keep.frozen.push(`${where}: joins ${sa.baseUnits} channels with ${sb.baseUnits} channels`);
    } else {
      keep.factor = (keep.factor * drop.factor) / gcd(keep.factor, drop.factor);
    }
    return this.find(ra);
  }

  /** Makes each unit of the group span `size` base channels at least (heads after a split). */
  private coarsen(group: number, size: number, where: string): void {
    const state = this.state(group);
    const factor = (state.factor * size) / gcd(state.factor, size);
    if (state.baseUnits % factor !== 0) {
      this.freeze(group, `${where}: blocks of ${factor} channels do not divide the ${state.baseUnits} channels`);
      return;
    }
    state.factor = factor;
  }

  /** Adds a member to `group`; `reader` is the node whose rule sliced the tensor (it follows the channels). */
  private addMember(group: number, member: GroupMember, reader?: NodeProto): void {
    if (member.kind === 'tensor') {
      const key = `${member.tensor}@${member.axis}`;
      if (reader !== undefined) {
        const readers = this.readers.get(key) ?? new Set<NodeProto>();
        readers.add(reader);
        this.readers.set(key, readers);
      }
      for (const other of this.groups) {
        if (other.memberKeys.has(key)) {
          const otherRoot = this.find(this.groups.indexOf(other));
          if (otherRoot !== this.find(group)) this.union(otherRoot, group, `tensor "${member.tensor}" shared by two layers`);
          return;
        }
      }
      this.state(group).memberKeys.add(key);
    }
    this.state(group).members.push(member);
  }

  // ------------------------------------------------------------------ tensors

  private dims(name: string | undefined): number[] | undefined {
    if (name === undefined || name === '') return undefined;
    const dims = this.shapes.get(name);
    return dims?.every((d) => typeof d === 'number') === true ? (dims as number[]) : undefined;
  }

  private requireDims(name: string | undefined): number[] {
    const dims = this.dims(name);
    if (dims === undefined) throw new FreezeSignal(`the shape of "${name ?? ''}" is unknown, so channels cannot be followed through it`);
    return dims;
  }

  /** The constant behind `name` (Identity aliases of initializers followed), or undefined. */
  private constantName(name: string): string | undefined {
    const resolved = this.aliases.get(name) ?? name;
    return this.view.isConstant(resolved) ? resolved : undefined;
  }

  /** Rank of a tensor: from shape inference, else as the rules recorded it (after an op without a shape rule). */
  private rankOf(name: string | undefined): number | undefined {
    if (name === undefined || name === '') return undefined;
    return this.shapes.get(name)?.length ?? this.ranks.get(name);
  }

  private annotate(tensor: string | undefined, annotation: ChannelAnnotation, rank?: number): void {
    if (tensor === undefined || tensor === '') return;
    if (rank !== undefined && this.rankOf(tensor) === undefined) this.ranks.set(tensor, rank);
    const existing = this.annotations.get(tensor);
    if (existing !== undefined && existing.group !== annotation.group) {
      throw new FreezeSignal(`tensor "${tensor}" would carry two channel groups`);
    }
    this.annotations.set(tensor, annotation);
  }

  private sliceConstant(group: number, node: NodeProto, name: string, axis: number, perBase: number, role: 'out' | 'in' | 'norm' | 'other'): void {
    const tensor = this.constantName(name);
    if (tensor === undefined) {
      throw new FreezeSignal(
        `input "${name}" has the same channels but is not produced by a prunable layer (e.g. a residual branch from a normalization or a graph input), so both sides must keep them`,
      );
    }
    this.addMember(group, { kind: 'tensor', tensor, axis, perBase, role, node: node.name }, node);
  }

  // ------------------------------------------------------------------ op rules

  private visit(node: NodeProto, position: number, inputs: ReadonlyArray<ChannelAnnotation | undefined>, macGroups: number[]): void {
    const annotated = inputs.some((a) => a !== undefined);
    const op = node.opType;
    if (!isDefaultDomain(node.domain)) {
      if (annotated) throw new FreezeSignal(`custom-domain op "${node.domain}.${op}" has no channel rule`);
      return;
    }
    switch (op) {
      case 'Conv':
        return this.visitConv(node, position, inputs, macGroups);
      case 'Gemm':
        return this.visitGemm(node, position, inputs, macGroups);
      case 'MatMul':
        return this.visitMatMul(node, position, inputs, macGroups);
      default:
        break;
    }
    if (!annotated) return;
    const first = inputs[0];
    if (UNARY_ELEMENTWISE.has(op)) {
      if (first === undefined || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach a parameter input of the op');
      this.annotate(node.output[0], first, this.rankOf(node.input[0]));
      return;
    }
    if (CHANNEL_POOLS.has(op)) {
      if (first === undefined || first.axis !== 1) throw new FreezeSignal('pooling over the channel axis');
      this.annotate(node.output[0], first, this.rankOf(node.input[0]));
      return;
    }
    if (BROADCAST_ELEMENTWISE.has(op) || op === 'PRelu') return this.visitBroadcast(node, inputs);
    switch (op) {
      case 'BatchNormalization':
      case 'InstanceNormalization': {
        if (first === undefined || first.axis !== 1 || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('normalization not over axis 1');
        const roles = ['norm', 'other', 'other', 'other'] as const;
        node.input.slice(1).forEach((name, i) => this.sliceConstant(first.group, node, name, 0, first.perBase, roles[i] ?? 'other'));
        this.annotate(node.output[0], first, this.rankOf(node.input[0]));
        return;
      }
      case 'LayerNormalization': {
        const rank = this.requireDims(node.input[0]).length;
        const axis = getIntAttribute(node, 'axis', -1);
        const start = axis < 0 ? axis + rank : axis;
        if (first === undefined || first.axis >= start) {
          throw new FreezeSignal('LayerNormalization normalizes across the channels (its mean and variance depend on every channel)');
        }
        this.annotate(node.output[0], first);
        return;
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const rank = this.requireDims(node.input[0]).length;
        const opset = this.opset();
        const axisAttribute = getIntAttribute(node, 'axis', opset >= 13 ? -1 : 1);
        const axis = axisAttribute < 0 ? axisAttribute + rank : axisAttribute;
        if (first === undefined || (opset >= 13 ? first.axis === axis : first.axis >= axis)) throw new FreezeSignal(`${op} over the channel axis`);
        this.annotate(node.output[0], first);
        return;
      }
      case 'Transpose': {
        if (first === undefined) return;
        const rank = this.requireDims(node.input[0]).length;
        const perm = getIntsAttribute(node, 'perm', [...Array(rank).keys()].reverse());
        this.annotate(node.output[0], { ...first, axis: perm.indexOf(first.axis) });
        return;
      }
      case 'Reshape':
        if (first === undefined || inputs[1] !== undefined) throw new FreezeSignal('channels reach the shape input');
        return this.visitReshape(node, first, this.requireDims(node.input[0]), this.requireDims(node.output[0]), true);
      case 'Flatten': {
        if (first === undefined) return;
        const input = this.requireDims(node.input[0]);
        const axisAttribute = getIntAttribute(node, 'axis', 1);
        const axis = axisAttribute < 0 ? axisAttribute + input.length : axisAttribute;
        return this.visitReshape(node, first, input, [product(input.slice(0, axis)), product(input.slice(axis))], false);
      }
      case 'Squeeze':
      case 'Unsqueeze': {
        if (first === undefined || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the axes input');
        return this.visitReshape(node, first, this.requireDims(node.input[0]), this.requireDims(node.output[0]), false);
      }
      case 'Gather': {
        if (first === undefined || inputs[1] !== undefined) throw new FreezeSignal('channels used as gather indices');
        const input = this.requireDims(node.input[0]);
        const axisAttribute = getIntAttribute(node, 'axis', 0);
        const axis = axisAttribute < 0 ? axisAttribute + input.length : axisAttribute;
        if (first.axis === axis) throw new FreezeSignal('Gather selects along the channel axis');
        const indexRank = this.requireDims(node.input[1]).length;
        this.annotate(node.output[0], { ...first, axis: first.axis < axis ? first.axis : first.axis - 1 + indexRank });
        return;
      }
      case 'Slice':
        return this.visitSlice(node, inputs);
      case 'Split': {
        if (first === undefined || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the split sizes');
        const rank = this.requireDims(node.input[0]).length;
        const axisAttribute = getIntAttribute(node, 'axis', 0);
        const axis = axisAttribute < 0 ? axisAttribute + rank : axisAttribute;
        if (axis === first.axis && node.output.length > 1) throw new FreezeSignal(PART_OF_THE_CHANNELS);
        for (const output of node.output) this.annotate(output, first, rank);
        return;
      }
      case 'Concat': {
        const rank = this.requireDims(node.output[0]).length;
        const axisAttribute = getIntAttribute(node, 'axis', 0);
        const axis = axisAttribute < 0 ? axisAttribute + rank : axisAttribute;
        if (inputs.some((a) => a !== undefined && a.axis === axis)) return this.visitChannelConcat(node, position, inputs, axis);
        return this.joinSameLayout(node, inputs, rank);
      }
      default:
        if (REDUCTIONS.has(op)) return this.visitReduce(node, inputs);
        throw new FreezeSignal(`op ${op} has no channel rule`);
    }
  }

  /**
   * Slice along other axes passes the channels; along the channel axis only a slice that keeps
   * them all (start 0, end past the last, step 1) does, and stays whole after pruning.
   */
  private visitSlice(node: NodeProto, inputs: ReadonlyArray<ChannelAnnotation | undefined>): void {
    const first = inputs[0];
    if (first === undefined || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the starts, ends, axes or steps');
    const rank = this.requireDims(node.input[0]).length;
    const size = this.requireDims(node.input[0])[first.axis] as number;
    // Opset 10+ gives starts, ends, axes and steps as inputs; earlier opsets as attributes.
    const listOf = (slot: number, attribute: string): number[] | undefined => {
      const name = node.input[slot];
      if (name === undefined || name === '') return getIntsAttribute(node, attribute);
      const constant = this.view.constantValue(name);
      if (constant === undefined) throw new FreezeSignal(`its ${attribute} are computed at run time`);
      return Array.from(tensorToArray(constant), Number);
    };
    const starts = listOf(1, 'starts') ?? [];
    const ends = listOf(2, 'ends') ?? [];
    const axes = (listOf(3, 'axes') ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
    const steps = listOf(4, 'steps') ?? axes.map(() => 1);
    const at = axes.indexOf(first.axis);
    if (at >= 0 && !((starts[at] ?? 0) === 0 && (ends[at] ?? 0) >= size && (steps[at] ?? 1) === 1)) throw new FreezeSignal(PART_OF_THE_CHANNELS);
    this.annotate(node.output[0], first, rank);
  }

  /** Concat along the channel axis: the output's channels are the inputs' channels side by side. */
  private visitChannelConcat(node: NodeProto, position: number, inputs: ReadonlyArray<ChannelAnnotation | undefined>, axis: number): void {
    const segments: Array<{ group: number | undefined; offset: number; channels: number }> = [];
    let offset = 0;
    node.input.forEach((name, i) => {
      const annotation = inputs[i];
      const channels = this.requireDims(name)[axis] as number;
      if (annotation !== undefined) {
        const state = this.state(annotation.group);
        if (annotation.axis !== axis || annotation.perBase !== 1 || state.factor !== 1 || state.segments !== undefined) {
          throw new FreezeSignal('Concat of channels in blocks (heads, flattened maps or nested concatenations)');
        }
      }
      segments.push({ group: annotation?.group, offset, channels });
      offset += channels;
    });
    const id = this.groups.length;
    this.groups.push({ parent: id, baseUnits: offset, factor: 1, members: [], memberKeys: new Set(), frozen: [], layers: [], firstLayerPosition: position, segments, concat: node });
    this.annotate(node.output[0], { group: id, axis, perBase: 1 }, this.rankOf(node.input[0]));
  }

  private opset(): number {
    const entry = this.model.opsetImport.find((o) => isDefaultDomain(o.domain));
    return entry === undefined ? 1 : Number(entry.version);
  }

  /** Every annotated input maps to the same output axis; all of them join one group. */
  private joinSameLayout(node: NodeProto, inputs: ReadonlyArray<ChannelAnnotation | undefined>, rank: number): void {
    let result: ChannelAnnotation | undefined;
    node.input.forEach((name, i) => {
      const annotation = inputs[i];
      const dims = this.dims(name);
      if (annotation === undefined || dims === undefined) return;
      const axis = annotation.axis + (rank - dims.length);
      if (result === undefined) result = { ...annotation, axis };
      else if (result.axis !== axis || result.perBase !== annotation.perBase) throw new FreezeSignal('its inputs carry channels on different axes');
      else result = { ...result, group: this.union(result.group, annotation.group, describeNode(node)) };
    });
    if (result === undefined) return;
    // Unannotated inputs must not have the channel axis at full size.
    node.input.forEach((name, i) => {
      if (inputs[i] !== undefined || name === '') return;
      const dims = this.dims(name);
      if (dims === undefined) throw new FreezeSignal(`the shape of input "${name}" is unknown`);
      const j = (result as ChannelAnnotation).axis - (rank - dims.length);
      if (j >= 0 && (dims[j] ?? 1) !== 1) throw new FreezeSignal(`input "${name}" has channels from outside the group`);
    });
    this.annotate(node.output[0], result);
  }

  private visitBroadcast(node: NodeProto, inputs: ReadonlyArray<ChannelAnnotation | undefined>): void {
    const inputRanks = node.input.map((name) => this.rankOf(name));
    if (inputRanks.some((r, i) => r === undefined && node.input[i] !== '')) {
      throw new FreezeSignal(`the rank of input "${node.input[inputRanks.indexOf(undefined)] ?? ''}" is unknown`);
    }
    const rank = Math.max(...(inputRanks as number[]));
    const outputDims = this.dims(node.output[0]);
    let result: ChannelAnnotation | undefined;
    node.input.forEach((name, i) => {
      const annotation = inputs[i];
      if (annotation === undefined) return;
      const axis = annotation.axis + (rank - (inputRanks[i] as number));
      if (result === undefined) result = { ...annotation, axis };
      else if (result.axis !== axis || result.perBase !== annotation.perBase) throw new FreezeSignal('its inputs carry channels on different axes');
      else result = { ...result, group: this.union(result.group, annotation.group, describeNode(node)) };
    });
    if (result === undefined) return;
    const channelAxis = result.axis;
    const fullSize = outputDims?.[channelAxis];
    node.input.forEach((name, i) => {
      if (inputs[i] !== undefined || name === '') return;
      const dims = this.requireDims(name);
      const j = channelAxis - (rank - dims.length);
      if (j < 0 || dims[j] === 1) return;
      if (fullSize !== undefined && dims[j] !== fullSize) throw new FreezeSignal(`input "${name}" does not broadcast along the channels`);
      if (node.opType === 'Where' && i === 0) throw new FreezeSignal('a Where condition along the channels');
      this.sliceConstant((result as ChannelAnnotation).group, node, name, j, (result as ChannelAnnotation).perBase, 'other');
    });
    this.annotate(node.output[0], result, rank);
  }

  private visitReduce(node: NodeProto, inputs: ReadonlyArray<ChannelAnnotation | undefined>): void {
    const first = inputs[0];
    if (first === undefined || inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the axes input');
    const rank = this.requireDims(node.input[0]).length;
    let axes = getIntsAttribute(node, 'axes');
    if (axes === undefined && node.input[1] !== undefined && node.input[1] !== '') {
      const constant = this.view.constantValue(node.input[1]);
      if (constant === undefined) throw new FreezeSignal('reduction axes are not constant');
      axes = Array.from(tensorToArray(constant), Number);
    }
    const normalized = (axes ?? [...Array(rank).keys()]).map((a) => (a < 0 ? a + rank : a));
    if (normalized.includes(first.axis)) throw new FreezeSignal('reduces over the channel axis');
    const keepDims = getIntAttribute(node, 'keepdims', 1) === 1;
    const axis = keepDims ? first.axis : first.axis - normalized.filter((a) => a < first.axis).length;
    this.annotate(node.output[0], { ...first, axis });
  }

  /**
   * Follows channels through a reshape from `input` to `output` dims: the channel axis stays,
   * merges with following axes (a channel becomes a block), or splits (units coarsen to the
   * outer part: heads).
   */
  private visitReshape(node: NodeProto, annotation: ChannelAnnotation, input: number[], output: number[], rewritesShape: boolean): void {
    const where = describeNode(node);
    const outer = product(input.slice(0, annotation.axis));
    const size = input[annotation.axis] as number;
    for (let k = 0; k < output.length; k++) {
      if (product(output.slice(0, k)) !== outer) continue;
      const out = output[k] as number;
      if (out === 1 && size !== 1) continue;
      let perBase: number | undefined;
      if (out === size) perBase = annotation.perBase;
      else if (out > size && out % size === 0) {
        const block = out / size;
        let inner = 1;
        for (let j = annotation.axis + 1; j < input.length && inner < block; j++) inner *= input[j] as number;
        if (inner === block) perBase = annotation.perBase * block;
      } else if (out < size && size % out === 0) {
        let span = 1;
        for (let j = k; j < output.length && span < size; j++) span *= output[j] as number;
        if (span === size) {
          const baseChannelsPerIndex = size / (out * annotation.perBase);
          if (!isWhole(baseChannelsPerIndex)) throw new FreezeSignal('a reshape splits a channel');
          this.coarsen(annotation.group, Math.round(baseChannelsPerIndex), where);
          perBase = annotation.perBase * (out / size);
        }
      }
      if (perBase === undefined) continue;
      if (rewritesShape) this.addReshapeMember(node, annotation.group, k, perBase);
      this.annotate(node.output[0], { group: annotation.group, axis: k, perBase });
      return;
    }
    throw new FreezeSignal(`a reshape from [${input.join(', ')}] to [${output.join(', ')}] mixes the channels with other axes`);
  }

  private addReshapeMember(node: NodeProto, group: number, position: number, perBase: number): void {
    const shapeName = node.input[1];
    const shape = shapeName === undefined ? undefined : this.view.constantValue(shapeName);
    if (shape === undefined) throw new FreezeSignal('the target shape is computed at run time');
    const value = Number(tensorToArray(shape)[position] ?? 0);
    // -1 is inferred and 0 copies the input's dim; both follow the pruned input by themselves.
    if (value > 0) this.addMember(group, { kind: 'reshape', nodeIndex: this.view.indexOfNode(node), position, perBase });
  }

  private visitConv(node: NodeProto, position: number, inputs: ReadonlyArray<ChannelAnnotation | undefined>, macGroups: number[]): void {
    const weightName = node.input[1] ?? '';
    const weight = this.constantName(weightName);
    const input = inputs[0];
    const where = describeNode(node, position);
    if (inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the weights');
    if (weight === undefined) {
      if (input !== undefined) throw new FreezeSignal('its weight is not a constant');
      return;
    }
    const dims = tensorDims(this.view.constantValue(weight) as NonNullable<ReturnType<OnnxGraph['constantValue']>>);
    const outChannels = dims[0] as number;
    const groupCount = getIntAttribute(node, 'group', 1);
    const inChannels = (dims[1] as number) * groupCount;
    const depthwise = groupCount > 1 && groupCount === inChannels && outChannels % groupCount === 0;
    if (input !== undefined) {
      if (input.axis !== 1) throw new FreezeSignal('channels on a spatial axis of the input');
      if (depthwise) {
        // Each output channel reads one input channel: output channels follow the input's group.
        const perBase = input.perBase * (outChannels / groupCount);
        this.addMember(input.group, { kind: 'tensor', tensor: weight, axis: 0, perBase, role: 'out', node: node.name }, node);
        const bias = node.input[2];
        if (bias !== undefined && bias !== '') this.sliceConstant(input.group, node, bias, 0, perBase, 'other');
        this.addMember(input.group, { kind: 'conv-group', nodeIndex: this.view.indexOfNode(node), perBase: input.perBase });
        this.state(input.group).layers.push(node);
        this.annotate(node.output[0], { group: input.group, axis: 1, perBase }, dims.length);
        return;
      }
      if (groupCount > 1) throw new FreezeSignal(`grouped convolution (group=${groupCount}) couples channels in blocks`);
      this.addMember(input.group, { kind: 'tensor', tensor: weight, axis: 1, perBase: input.perBase, role: 'in', node: node.name }, node);
      macGroups.push(input.group);
    }
    const group = this.newGroup(outChannels, node, position);
    if (groupCount > 1) this.freeze(group, `${where}: grouped convolution (group=${groupCount}) couples channels in blocks`);
    this.addMember(group, { kind: 'tensor', tensor: weight, axis: 0, perBase: 1, role: 'out', node: node.name }, node);
    const bias = node.input[2];
    if (bias !== undefined && bias !== '') this.sliceConstant(group, node, bias, 0, 1, 'other');
    this.annotate(node.output[0], { group, axis: 1, perBase: 1 }, dims.length);
  }

  private visitGemm(node: NodeProto, position: number, inputs: ReadonlyArray<ChannelAnnotation | undefined>, macGroups: number[]): void {
    const weight = this.constantName(node.input[1] ?? '');
    const input = inputs[0];
    if (inputs.slice(1).some((a) => a !== undefined)) throw new FreezeSignal('channels reach the weights or bias');
    if (weight === undefined) {
      if (input !== undefined) throw new FreezeSignal('its weight is not a constant');
      return;
    }
    const transA = getIntAttribute(node, 'transA', 0) === 1;
    const transB = getIntAttribute(node, 'transB', 0) === 1;
    if (input !== undefined) {
      if (input.axis !== (transA ? 0 : 1)) throw new FreezeSignal('channels on the batch axis of the input');
      this.addMember(input.group, { kind: 'tensor', tensor: weight, axis: transB ? 1 : 0, perBase: input.perBase, role: 'in', node: node.name }, node);
      macGroups.push(input.group);
    }
    const dims = tensorDims(this.view.constantValue(weight) as NonNullable<ReturnType<OnnxGraph['constantValue']>>);
    const outFeatures = (transB ? dims[0] : dims[1]) as number;
    const group = this.newGroup(outFeatures, node, position);
    this.addMember(group, { kind: 'tensor', tensor: weight, axis: transB ? 0 : 1, perBase: 1, role: 'out', node: node.name }, node);
    const bias = node.input[2];
    if (bias !== undefined && bias !== '') {
      const biasDims = this.dims(bias);
      if (this.constantName(bias) === undefined || biasDims === undefined) this.freeze(group, `${describeNode(node, position)}: its bias is not a constant`);
      else if (biasDims.length > 0 && biasDims[biasDims.length - 1] === outFeatures) this.sliceConstant(group, node, bias, biasDims.length - 1, 1, 'other');
    }
    this.annotate(node.output[0], { group, axis: 1, perBase: 1 }, 2);
  }

  private visitMatMul(node: NodeProto, position: number, inputs: ReadonlyArray<ChannelAnnotation | undefined>, macGroups: number[]): void {
    const [aName, bName] = [node.input[0] ?? '', node.input[1] ?? ''];
    const [a, b] = [inputs[0], inputs[1]];
    const weight = this.constantName(bName);
    if (weight !== undefined && this.constantName(aName) === undefined) {
      const weightDims = this.dims(bName);
      const aDims = this.requireDims(aName);
      if (weightDims?.length !== 2) {
        if (a !== undefined) throw new FreezeSignal('a batched constant weight');
        return;
      }
        const outputRank = aDims.length;
      if (a !== undefined) {
        if (a.axis !== aDims.length - 1) throw new FreezeSignal('channels on a row axis reach a weight layer');
        this.addMember(a.group, { kind: 'tensor', tensor: weight, axis: 0, perBase: a.perBase, role: 'in', node: node.name }, node);
        macGroups.push(a.group);
      }
      const group = this.newGroup(weightDims[1] as number, node, position);
      this.addMember(group, { kind: 'tensor', tensor: weight, axis: 1, perBase: 1, role: 'out', node: node.name }, node);
      this.annotate(node.output[0], { group, axis: outputRank - 1, perBase: 1 });
      return;
    }
    if (a === undefined && b === undefined) return;
    // Two activations (attention scores, weighted values): batch axes pass, the contraction joins.
    const aDims = this.requireDims(aName);
    const bDims = this.requireDims(bName);
    const outputRank = this.requireDims(node.output[0]).length;
    if (aDims.length < 2 || bDims.length < 2) throw new FreezeSignal('a matrix-vector product');
    const toOutput = (annotation: ChannelAnnotation, rank: number, isA: boolean): number | 'contraction' => {
      if (isA && annotation.axis === rank - 1) return 'contraction';
      if (!isA && annotation.axis === rank - 2) return 'contraction';
      if (isA && annotation.axis === rank - 2) return outputRank - 2;
      if (!isA && annotation.axis === rank - 1) return outputRank - 1;
      return annotation.axis + (outputRank - rank);
    };
    const mapped = [a === undefined ? undefined : toOutput(a, aDims.length, true), b === undefined ? undefined : toOutput(b, bDims.length, false)];
    if (mapped[0] === 'contraction' || mapped[1] === 'contraction') {
      if (mapped[0] !== 'contraction' || mapped[1] !== 'contraction' || a === undefined || b === undefined || a.perBase !== b.perBase) {
        throw new FreezeSignal('channels contracted against unpruned values');
      }
      macGroups.push(this.union(a.group, b.group, describeNode(node, position)));
      return;
    }
    if (a !== undefined && b !== undefined) {
      if (mapped[0] !== mapped[1] || a.perBase !== b.perBase) throw new FreezeSignal('its inputs carry channels on different axes');
      const group = this.union(a.group, b.group, describeNode(node, position));
      this.annotate(node.output[0], { group, axis: mapped[0] as number, perBase: a.perBase });
      return;
    }
    const annotation = (a ?? b) as ChannelAnnotation;
    const axis = (mapped[0] ?? mapped[1]) as number;
    const otherDims = a === undefined ? aDims : bDims;
    const j = axis - (outputRank - otherDims.length);
    if (axis < outputRank - 2 && j >= 0 && otherDims[j] !== 1) throw new FreezeSignal('batched against unpruned values');
    this.annotate(node.output[0], { ...annotation, axis });
  }

  // ------------------------------------------------------------------ result

  private finish(stats: ModelStats): DependencyAnalysis {
    const { params, macs } = stats;
    const allRoots = this.groups.map((_, i) => i).filter((i) => this.find(i) === i);
    for (const root of allRoots) this.freezeSharedTensors(this.groups[root] as GroupState);
    // Concatenated channels that cannot change freeze the groups feeding them.
    for (const root of allRoots) {
      const state = this.groups[root] as GroupState;
      if (state.segments === undefined) continue;
      if (state.factor !== 1) state.frozen.push(`${describeNode(state.concat as NodeProto)}: concatenated channels split into blocks`);
      // A group whose units became blocks after the Concat (heads further on) is kept at the Concat by channel.
      if (state.segments.some((segment) => segment.group !== undefined && this.state(segment.group).factor !== 1)) {
        state.frozen.push(`${describeNode(state.concat as NodeProto)}: a concatenated group is pruned in blocks of channels elsewhere`);
      }
      if (state.frozen.length === 0) continue;
      for (const segment of state.segments) {
        if (segment.group === undefined) continue;
        const reason = `${describeNode(state.concat as NodeProto)} concatenates these channels, and they cannot change there: ${state.frozen.join('; ')}`;
        const target = this.state(segment.group);
        if (!target.frozen.includes(reason)) target.frozen.push(reason);
      }
    }
    const roots = allRoots.filter((root) => (this.groups[root] as GroupState).segments === undefined);
    const composites = allRoots.filter((root) => (this.groups[root] as GroupState).segments !== undefined);
    const nodeStats = new Map(stats.perNode.map((s) => [s.node, s]));
    const order = this.view.topologicalOrder();
    const computeLayers = order.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType) && isDefaultDomain(n.domain));
    const groups: DependencyGroup[] = [];
    for (const root of roots) {
      const state = this.groups[root] as GroupState;
      const layers = [...state.layers].sort((x, y) => order.indexOf(x) - order.indexOf(y));
      const first = layers[0] as NodeProto;
      const name = first.name !== '' ? first.name : `${first.opType}#${order.indexOf(first)}`;
      for (const member of state.members) {
        const per = member.perBase * state.factor;
        if (!isWhole(per)) state.frozen.push(`${name}: channel blocks of ${per} indices do not align (${member.kind})`);
      }
      const units = state.baseUnits / state.factor;
      if (units < 2 && state.frozen.length === 0) state.frozen.push(`${name}: a single unit cannot be pruned`);
      const kind = state.factor > 1 ? 'heads' : first.opType === 'Conv' ? 'channels' : 'neurons';
      const labelOf = (n: NodeProto): string => (n.name !== '' ? n.name : `${n.opType}#${order.indexOf(n)}`);
      const layerStats = layers.map((n) => nodeStats.get(labelOf(n)));
      const weight = this.view.constantValue(first.input[1] ?? '');
      const weightDims = weight === undefined ? [] : tensorDims(weight);
      const kernel = first.opType === 'Conv' ? product(weightDims.slice(2)) : 1;
      const inChannels =
        first.opType === 'Conv'
          ? (weightDims[1] ?? 0) * getIntAttribute(first, 'group', 1)
          : first.opType === 'Gemm'
            ? ((getIntAttribute(first, 'transB', 0) === 1 ? weightDims[1] : weightDims[0]) ?? 0)
            : (weightDims[0] ?? 0);
      groups.push({
        name,
        kind,
        units,
        unitSize: state.factor,
        layers: layers.map(labelOf),
        index: computeLayers.indexOf(first),
        members: state.members,
        frozenReasons: state.frozen,
        features: {
          index: computeLayers.indexOf(first),
          opType: first.opType,
          inChannels,
          outChannels: state.baseUnits,
          kernel,
          stride: first.opType === 'Conv' ? Math.max(...getIntsAttribute(first, 'strides', [1])) : 1,
          macs: layerStats.reduce((sum, s) => sum + (s?.macs ?? 0), 0),
          params: layerStats.reduce((sum, s) => sum + (s?.params ?? 0), 0),
        },
      });
    }
    const macTerms: MacTerm[] = this.macTerms.map((t) => ({ macs: t.macs, groups: [...new Set(t.groups.map((g) => this.find(g)))] }));
    const paramTerms = this.paramTerms();
    const groupOfRoot = new Map(roots.map((root, i) => [root, groups[i] as DependencyGroup]));
    const concatenations: ConcatenatedChannels[] = composites.map((root) => {
      const state = this.groups[root] as GroupState;
      const concat = state.concat as NodeProto;
      return {
        name: concat.name !== '' ? concat.name : `Concat#${order.indexOf(concat)}`,
        channels: state.baseUnits,
        segments: (state.segments ?? []).map((segment) => ({
          group: segment.group === undefined ? undefined : groupOfRoot.get(this.find(segment.group))?.name,
          offset: segment.offset,
          channels: segment.channels,
        })),
        members: state.members,
      };
    });
    const concatOfRoot = new Map(composites.map((root, i) => [root, concatenations[i] as ConcatenatedChannels]));
    const fraction = (root: number, kept: ReadonlyMap<string, number>): number => {
      const concatenation = concatOfRoot.get(root);
      if (concatenation !== undefined) {
        let channels = 0;
        for (const segment of concatenation.segments) {
          const group = segment.group === undefined ? undefined : groups.find((g) => g.name === segment.group);
          channels += group === undefined ? segment.channels : ((kept.get(group.name) ?? group.units) * segment.channels) / group.units;
        }
        return channels / concatenation.channels;
      }
      const group = groupOfRoot.get(root) as DependencyGroup;
      return (kept.get(group.name) ?? group.units) / group.units;
    };
    return {
      groups,
      concatenations,
      params,
      macs,
      predict(keptUnits) {
        let predictedMacs = 0;
        for (const term of macTerms) predictedMacs += Math.round(term.macs * term.groups.reduce((f, g) => f * fraction(g, keptUnits), 1));
        let predictedParams = 0;
        for (const term of paramTerms) predictedParams += Math.round(term.elements * term.groups.reduce((f, g) => f * fraction(g, keptUnits), 1));
        return { params: predictedParams, macs: predictedMacs };
      },
    };
  }

  /**
   * Freezes a group with a member tensor that some node reads without following the group's
   * channels (an initializer shared with a layer on a frozen path or outside any group): slicing
   * it would break that node. Identity aliases of the tensor count through their readers.
   */
  private freezeSharedTensors(state: GroupState): void {
    for (const member of state.members) {
      if (member.kind !== 'tensor') continue;
      const readers = this.readers.get(`${member.tensor}@${member.axis}`) ?? new Set<NodeProto>();
      const pending = [member.tensor];
      const seen = new Set<string>();
      while (pending.length > 0) {
        const name = pending.pop() as string;
        if (seen.has(name)) continue;
        seen.add(name);
        if (this.view.isGraphOutput(name)) {
          const reason = `tensor "${member.tensor}" is a graph output, so it cannot be sliced`;
          if (!state.frozen.includes(reason)) state.frozen.push(reason);
        }
        for (const consumer of this.view.consumersOf(name)) {
          const output = consumer.output[0];
          if (consumer.opType === 'Identity' && output !== undefined && this.aliases.get(output) === member.tensor) {
            pending.push(output);
          } else if (!readers.has(consumer)) {
            const reason = `tensor "${member.tensor}" is also read by ${describeNode(consumer)}, which does not follow these channels (a shared initializer or constant)`;
            if (!state.frozen.includes(reason)) state.frozen.push(reason);
          }
        }
      }
    }
  }

  /** The parameter tensors `countModelStats` counts, each with the groups slicing it. */
  private paramTerms(): ParamTerm[] {
    const slicedBy = new Map<string, number[]>();
    this.groups.forEach((state, i) => {
      if (state.parent !== i) return;
      for (const member of state.members) {
        if (member.kind !== 'tensor') continue;
        const list = slicedBy.get(member.tensor) ?? [];
        list.push(i);
        slicedBy.set(member.tensor, list);
      }
    });
    const graph = this.view;
    const terms: ParamTerm[] = [];
    const counted = new Set<string>();
    for (const node of graph.topologicalOrder()) {
      node.input.forEach((name, slot) => {
        if (name === '' || counted.has(name)) return;
        const resolved = this.aliases.get(name) ?? name;
        const tensor = graph.getInitializer(resolved);
        if (tensor === undefined) return;
        const elements = elementCount(tensor.dims);
        if (!isParameterInput(node, slot, tensor.dataType, elements)) return;
        counted.add(name);
        terms.push({ elements, groups: slicedBy.get(resolved) ?? [] });
      });
    }
    return terms;
  }
}

/**
 * Why Split and Slice along the channels freeze: how many of a part's channels survive depends on
 * which units are kept, not only on how many, so neither the part's shape nor the plan's cost
 * could be predicted from the kept counts.
 */
const PART_OF_THE_CHANNELS =
  'it takes part of the channels; how many of them survive pruning depends on which channels are kept, so the split cannot be predicted from kept counts';

/** Thrown inside a rule to freeze the groups reaching the node, with the reason. */
class FreezeSignal extends Error {}
