import { create, isMessage } from '@bufbuild/protobuf';
import { ModelFormatError, UnsupportedOperationError } from '@open-autoglm/core';
import { type AttributeValue, findAttribute, makeAttribute } from './attributes.js';
import {
  type AttributeProto,
  AttributeProtoSchema,
  AttributeType,
  DataType,
  type GraphProto,
  type NodeProto,
  NodeProtoSchema,
  type TensorProto,
  TensorProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from './proto.js';

/** Attributes for `makeNode`: plain values go through `makeAttribute`, ready-made protos are kept. */
export type NodeAttributes = Readonly<Record<string, AttributeValue | AttributeProto>>;

/**
 * A new node. Plain attribute values follow `makeAttribute`'s rules (an integral number becomes
 * INT); pass an `AttributeProto` (e.g. `makeAttribute('alpha', 1, true)`) to force FLOAT.
 */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: NodeAttributes = {},
  name = '',
  domain = '',
): NodeProto {
  const attribute = Object.entries(attributes).map(([key, value]) =>
    isMessage(value, AttributeProtoSchema) ? value : makeAttribute(key, value),
  );
  return create(NodeProtoSchema, { opType, input: [...inputs], output: [...outputs], attribute, name, domain });
}

/** A GRAPH attribute (the branches of If, the body of Loop or Scan). */
export function makeGraphAttribute(name: string, graph: GraphProto): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeType.GRAPH, g: graph });
}

/** True for the default ONNX operator domain, which has two spellings. */
export function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

/** A node for messages: `"conv1" (Conv)`, or by position `#3 (Conv)` when it has no name. */
export function describeNode(node: NodeProto, position?: number): string {
  const op = node.domain === '' ? node.opType : `${node.domain}.${node.opType}`;
  if (node.name !== '') return `"${node.name}" (${op})`;
  return position === undefined || position < 0 ? `(${op}, unnamed)` : `#${position} (${op})`;
}

/** The graphs held by a node's attributes (If branches, Loop and Scan bodies). */
export function subgraphsOf(node: NodeProto): GraphProto[] {
  const graphs: GraphProto[] = [];
  for (const attribute of node.attribute) {
    if (attribute.g !== undefined) graphs.push(attribute.g);
    graphs.push(...attribute.graphs);
  }
  return graphs;
}

/** Names a graph defines itself: its inputs, initializers and node outputs. */
export function definedNamesOf(graph: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const input of graph.input) names.add(input.name);
  for (const tensor of graph.initializer) names.add(tensor.name);
  for (const sparse of graph.sparseInitializer) if (sparse.values !== undefined) names.add(sparse.values.name);
  for (const node of graph.node) for (const output of node.output) if (output !== '') names.add(output);
  return names;
}

/**
 * Names a subgraph reads from enclosing scopes: used by its nodes, its outputs or its own
 * subgraphs, but not defined in it. These are the hidden inputs of the node holding it.
 */
export function outerScopeNamesOf(graph: GraphProto): Set<string> {
  const defined = definedNamesOf(graph);
  const outer = new Set<string>();
  const use = (name: string): void => {
    if (name !== '' && !defined.has(name)) outer.add(name);
  };
  for (const node of graph.node) {
    for (const input of node.input) use(input);
    for (const subgraph of subgraphsOf(node)) for (const name of outerScopeNamesOf(subgraph)) use(name);
  }
  for (const output of graph.output) use(output.name);
  return outer;
}

/** Every tensor name a node reads: its explicit inputs and what its subgraphs take from outside. */
export function namesUsedBy(node: NodeProto): Set<string> {
  const names = new Set<string>();
  for (const input of node.input) if (input !== '') names.add(input);
  for (const subgraph of subgraphsOf(node)) for (const name of outerScopeNamesOf(subgraph)) names.add(name);
  return names;
}

/** Replaces outer-scope references to `from` inside a subgraph (stops where the name is shadowed). */
function renameOuterReferences(graph: GraphProto, from: string, to: string): void {
  if (definedNamesOf(graph).has(from)) return;
  for (const node of graph.node) {
    node.input = node.input.map((name) => (name === from ? to : name));
    for (const subgraph of subgraphsOf(node)) renameOuterReferences(subgraph, from, to);
  }
  for (const output of graph.output) if (output.name === from) output.name = to;
  for (const info of graph.valueInfo) if (info.name === from) info.name = to;
}

/** Every name in a graph and its subgraphs (tensors and nodes), for picking fresh names. */
function collectNames(graph: GraphProto, names: Set<string>): void {
  for (const name of definedNamesOf(graph)) names.add(name);
  for (const output of graph.output) names.add(output.name);
  for (const info of graph.valueInfo) names.add(info.name);
  for (const node of graph.node) {
    if (node.name !== '') names.add(node.name);
    for (const input of node.input) if (input !== '') names.add(input);
    for (const subgraph of subgraphsOf(node)) collectNames(subgraph, names);
  }
}

/** Lookup tables over one state of the graph; thrown away after an edit and rebuilt on demand. */
interface GraphIndex {
  readonly nodes: NodeProto[];
  readonly nodeCount: number;
  readonly initializerList: TensorProto[];
  readonly initializerCount: number;
  readonly inputList: ValueInfoProto[];
  readonly inputCount: number;
  readonly producers: Map<string, NodeProto>;
  readonly consumers: Map<string, NodeProto[]>;
  readonly positions: Map<NodeProto, number>;
  readonly uses: Map<NodeProto, Set<string>>;
  readonly initializers: Map<string, TensorProto>;
  readonly inputNames: Set<string>;
  readonly names: Set<string>;
}

const EMPTY: readonly NodeProto[] = Object.freeze([]);

/**
 * A live view over a `GraphProto`: every edit goes straight to the proto, so `proto` is always
 * the graph as it stands. Lookups (producer, consumers, initializers by name) use an index that
 * is rebuilt lazily after an edit made through this class, or when the node, initializer or
 * input lists were replaced or changed length. After changing a node's inputs or outputs
 * directly on the proto, call `invalidate()`.
 *
 * "Consumers" include nodes that read a name only inside a subgraph (If/Loop/Scan bodies), since
 * they must run after its producer too.
 */
export class OnnxGraph {
  private index: GraphIndex | undefined;
  private readonly reservedNames = new Set<string>();
  private readonly nextSuffix = new Map<string, number>();

  constructor(readonly proto: GraphProto) {}

  get name(): string {
    return this.proto.name;
  }

  /** The nodes in file order (ONNX requires it to be topological; see `topologicalOrder`). */
  get nodes(): readonly NodeProto[] {
    return this.proto.node;
  }

  /** The real inputs: graph inputs that are not initializers (what a caller must feed). */
  get inputs(): ValueInfoProto[] {
    const index = this.current();
    return this.proto.input.filter((input) => !index.initializers.has(input.name));
  }

  /** The graph outputs. */
  get outputs(): readonly ValueInfoProto[] {
    return this.proto.output;
  }

  /** The initializers (weights and other constants stored in the file). */
  get initializers(): readonly TensorProto[] {
    return this.proto.initializer;
  }

  /** Drops the index; needed only after editing node inputs/outputs directly on the proto. */
  invalidate(): void {
    this.index = undefined;
  }

  // ---------------------------------------------------------------- lookups

  /** The node that outputs `name`, or undefined (graph input, initializer, or unknown name). */
  producerOf(name: string): NodeProto | undefined {
    const node = this.current().producers.get(name);
    if (node === undefined || node.output.includes(name)) return node;
    this.invalidate();
    return this.current().producers.get(name);
  }

  /** The nodes that read `name` (explicitly or inside a subgraph), in graph order. */
  consumersOf(name: string): readonly NodeProto[] {
    return this.current().consumers.get(name) ?? EMPTY;
  }

  /** The position of a node in `nodes`, or -1 when it is not in this graph. */
  indexOfNode(node: NodeProto): number {
    const position = this.current().positions.get(node);
    if (position !== undefined && this.proto.node[position] === node) return position;
    return this.proto.node.indexOf(node);
  }

  /** The initializer named `name`, or undefined. */
  getInitializer(name: string): TensorProto | undefined {
    const tensor = this.current().initializers.get(name);
    if (tensor === undefined || tensor.name === name) return tensor;
    this.invalidate();
    return this.current().initializers.get(name);
  }

  /** True when `name` is a graph input (including initializers listed as inputs). */
  isGraphInput(name: string): boolean {
    return this.current().inputNames.has(name);
  }

  /** True when `name` is listed as a graph output. */
  isGraphOutput(name: string): boolean {
    return this.proto.output.some((output) => output.name === name);
  }

  /** Type/shape information for a tensor: from value_info, else the graph input or output entry. */
  getValueInfo(name: string): ValueInfoProto | undefined {
    return (
      this.proto.valueInfo.find((info) => info.name === name) ??
      this.proto.input.find((info) => info.name === name) ??
      this.proto.output.find((info) => info.name === name)
    );
  }

  /**
   * True when `name` has a value fixed in the file: an initializer that is not also a graph
   * input (those can be overridden when the model is run), or the output of a Constant node.
   */
  isConstant(name: string): boolean {
    return this.constantValue(name) !== undefined;
  }

  /**
   * The fixed value of `name` as a tensor (see `isConstant`), or undefined. Initializers and a
   * Constant's `value` are returned live (edits change the model); the scalar and list forms of
   * Constant (`value_float`, `value_ints`, ...) come back as a new tensor.
   */
  constantValue(name: string): TensorProto | undefined {
    const initializer = this.getInitializer(name);
    if (initializer !== undefined) return this.isGraphInput(name) ? undefined : initializer;
    const producer = this.producerOf(name);
    if (producer === undefined || producer.opType !== 'Constant' || !isDefaultDomain(producer.domain)) return undefined;
    return constantNodeValue(producer, name);
  }

  // ---------------------------------------------------------------- order

  /**
   * The nodes in an order where every node comes after the producers of everything it reads.
   * Stable: an already sorted graph comes back in its own order. Throws `ModelFormatError`
   * naming the nodes of a cycle.
   */
  topologicalOrder(): NodeProto[] {
    const index = this.current();
    const nodes = this.proto.node;
    const pending = new Int32Array(nodes.length);
    const successors: number[][] = nodes.map(() => []);
    nodes.forEach((node, position) => {
      for (const name of index.uses.get(node) ?? []) {
        const producer = index.producers.get(name);
        if (producer === undefined) continue;
        const from = index.positions.get(producer) ?? -1;
        successors[from]?.push(position);
        pending[position] = (pending[position] ?? 0) + 1;
      }
    });
    const ready = new MinHeap();
    pending.forEach((count, position) => {
      if (count === 0) ready.push(position);
    });
    const order: NodeProto[] = [];
    for (let position = ready.pop(); position !== undefined; position = ready.pop()) {
      order.push(nodes[position] as NodeProto);
      for (const next of successors[position] ?? []) {
        pending[next] = (pending[next] ?? 0) - 1;
        if (pending[next] === 0) ready.push(next);
      }
    }
    if (order.length < nodes.length) throw this.cycleError(pending);
    return order;
  }

  /** Reorders `nodes` topologically, in place (see `topologicalOrder`). */
  sortTopologically(): void {
    const order = this.topologicalOrder();
    this.proto.node.splice(0, this.proto.node.length, ...order);
    this.invalidate();
  }

  private cycleError(pending: Int32Array): ModelFormatError {
    const index = this.current();
    const nodes = this.proto.node;
    // Every node still pending has a pending producer, so walking producers must revisit a node.
    const start = pending.findIndex((count) => count > 0);
    const path: number[] = [];
    const seenAt = new Map<number, number>();
    let current = start;
    while (!seenAt.has(current)) {
      seenAt.set(current, path.length);
      path.push(current);
      const node = nodes[current] as NodeProto;
      let previous = -1;
      for (const name of index.uses.get(node) ?? []) {
        const producer = index.producers.get(name);
        const position = producer === undefined ? -1 : (index.positions.get(producer) ?? -1);
        if (position >= 0 && (pending[position] ?? 0) > 0) {
          previous = position;
          break;
        }
      }
      current = previous;
    }
    const cycle = path.slice(seenAt.get(current)).reverse();
    const described = [...cycle, cycle[0] as number].map((p) => describeNode(nodes[p] as NodeProto, p));
    return new ModelFormatError(
      `Graph "${this.proto.name}" has a cycle: ${described.join(' -> ')}. ` +
        'ONNX graphs must be acyclic; the model is corrupt or a transform wired a node to its own output. ' +
        'Re-export the model, or fix the edit that created the loop.',
    );
  }

  // ---------------------------------------------------------------- node edits

  /** Appends a node at the end. */
  addNode(node: NodeProto): NodeProto {
    this.proto.node.push(node);
    this.invalidate();
    return node;
  }

  /** Inserts a node right before `anchor`. */
  insertNodeBefore(anchor: NodeProto, node: NodeProto): NodeProto {
    this.proto.node.splice(this.requirePosition(anchor), 0, node);
    this.invalidate();
    return node;
  }

  /** Inserts a node right after `anchor`. */
  insertNodeAfter(anchor: NodeProto, node: NodeProto): NodeProto {
    this.proto.node.splice(this.requirePosition(anchor) + 1, 0, node);
    this.invalidate();
    return node;
  }

  /**
   * Removes a node. Its outputs are left dangling: rewire their consumers first, e.g. with
   * `replaceUses(output, input)` when bypassing an Identity.
   */
  removeNode(node: NodeProto): void {
    this.proto.node.splice(this.requirePosition(node), 1);
    this.invalidate();
  }

  /** Removes several nodes in one pass. */
  removeNodes(nodes: Iterable<NodeProto>): void {
    const doomed = new Set(nodes);
    for (const node of doomed) this.requirePosition(node);
    const kept = this.proto.node.filter((node) => !doomed.has(node));
    this.proto.node.splice(0, this.proto.node.length, ...kept);
    this.invalidate();
  }

  /** Sets one input of a node (use this rather than editing `node.input`, so the index follows). */
  setNodeInput(node: NodeProto, slot: number, name: string): void {
    this.requirePosition(node);
    while (node.input.length <= slot) node.input.push('');
    node.input[slot] = name;
    this.invalidate();
  }

  private requirePosition(node: NodeProto): number {
    const position = this.indexOfNode(node);
    if (position < 0) {
      throw new UnsupportedOperationError(
        `Node ${describeNode(node)} is not in graph "${this.proto.name}". ` +
          'Pass a node taken from this graph (nodes of a cloned model are different objects).',
      );
    }
    return position;
  }

  // ---------------------------------------------------------------- name edits

  /**
   * Makes every reader of `from` read `to` instead (node inputs, including references inside
   * subgraphs). Graph outputs keep their names; use `renameTensor` to change the name itself.
   */
  replaceUses(from: string, to: string): void {
    if (from === to) return;
    for (const node of this.consumersOf(from)) {
      node.input = node.input.map((name) => (name === from ? to : name));
      for (const subgraph of subgraphsOf(node)) renameOuterReferences(subgraph, from, to);
    }
    this.invalidate();
  }

  /**
   * Renames a tensor everywhere in the graph: its producer or graph input, initializer,
   * value_info, graph output, quantization annotations and every reader (subgraphs included).
   * Refuses a name already in use, which would merge two tensors.
   */
  renameTensor(from: string, to: string): void {
    if (from === to) return;
    if (this.current().names.has(to)) {
      throw new UnsupportedOperationError(
        `Cannot rename tensor "${from}" to "${to}" in graph "${this.proto.name}": "${to}" is already used. ` +
          'Pick a fresh name with graph.uniqueName().',
      );
    }
    const rename = (name: string): string => (name === from ? to : name);
    for (const node of this.proto.node) {
      node.input = node.input.map(rename);
      node.output = node.output.map(rename);
      for (const subgraph of subgraphsOf(node)) renameOuterReferences(subgraph, from, to);
    }
    for (const info of [...this.proto.input, ...this.proto.output, ...this.proto.valueInfo]) info.name = rename(info.name);
    for (const tensor of this.proto.initializer) tensor.name = rename(tensor.name);
    for (const sparse of this.proto.sparseInitializer) if (sparse.values !== undefined) sparse.values.name = rename(sparse.values.name);
    for (const annotation of this.proto.quantizationAnnotation) annotation.tensorName = rename(annotation.tensorName);
    this.invalidate();
  }

  /**
   * A name not used anywhere in the graph or its subgraphs (tensors and nodes): `prefix` itself
   * when free, else `prefix_1`, `prefix_2`, ... The name is reserved, so later calls never
   * return it again even before it is used.
   */
  uniqueName(prefix: string): string {
    const names = this.current().names;
    const taken = (name: string): boolean => names.has(name) || this.reservedNames.has(name);
    let name = prefix;
    if (taken(name)) {
      let suffix = this.nextSuffix.get(prefix) ?? 1;
      do name = `${prefix}_${suffix++}`;
      while (taken(name));
      this.nextSuffix.set(prefix, suffix);
    }
    this.reservedNames.add(name);
    return name;
  }

  // ---------------------------------------------------------------- initializers, inputs, outputs, value_info

  /**
   * Adds an initializer, or replaces the one with the same name in place (keeping file order).
   * Refuses a name that a node outputs, since the tensor would then be defined twice.
   */
  setInitializer(tensor: TensorProto): void {
    const producer = this.producerOf(tensor.name);
    if (producer !== undefined) {
      throw new UnsupportedOperationError(
        `Cannot add initializer "${tensor.name}" to graph "${this.proto.name}": ` +
          `node ${describeNode(producer, this.indexOfNode(producer))} already outputs that name. ` +
          'Remove the node first, or use graph.uniqueName() for the initializer.',
      );
    }
    const position = this.proto.initializer.findIndex((t) => t.name === tensor.name);
    if (position >= 0) this.proto.initializer[position] = tensor;
    else this.proto.initializer.push(tensor);
    this.invalidate();
  }

  /**
   * Removes an initializer and, when the file also lists it as a graph input (IR < 4 style), that
   * input entry too, so it does not turn into a required input. Returns the removed tensor.
   */
  removeInitializer(name: string): TensorProto | undefined {
    const position = this.proto.initializer.findIndex((t) => t.name === name);
    if (position < 0) return undefined;
    const [removed] = this.proto.initializer.splice(position, 1);
    const inputPosition = this.proto.input.findIndex((input) => input.name === name);
    if (inputPosition >= 0) this.proto.input.splice(inputPosition, 1);
    this.invalidate();
    return removed;
  }

  /**
   * Records type/shape information for a tensor. A graph input or output has its own entry,
   * which is replaced; any other tensor goes to value_info (replacing an entry of the same name).
   */
  setValueInfo(info: ValueInfoProto): void {
    for (const list of [this.proto.input, this.proto.output, this.proto.valueInfo]) {
      const position = list.findIndex((entry) => entry.name === info.name);
      if (position >= 0) {
        list[position] = info;
        return;
      }
    }
    this.proto.valueInfo.push(info);
  }

  /** Removes the value_info entry of a tensor (graph inputs and outputs are not touched). */
  removeValueInfo(name: string): boolean {
    const position = this.proto.valueInfo.findIndex((info) => info.name === name);
    if (position < 0) return false;
    this.proto.valueInfo.splice(position, 1);
    return true;
  }

  /** Adds a graph input (a `ValueInfoProto`, e.g. from `makeTensorValueInfo`). */
  addInput(info: ValueInfoProto): void {
    this.proto.input.push(info);
    this.invalidate();
  }

  /** Removes a graph input by name; returns whether there was one. */
  removeInput(name: string): boolean {
    const position = this.proto.input.findIndex((input) => input.name === name);
    if (position < 0) return false;
    this.proto.input.splice(position, 1);
    this.invalidate();
    return true;
  }

  /** Adds a graph output, e.g. to fetch an intermediate tensor; an output already listed is kept. */
  addOutput(info: ValueInfoProto): void {
    if (this.isGraphOutput(info.name)) return;
    this.proto.output.push(info);
    this.invalidate();
  }

  /** Removes a graph output by name; returns whether there was one. */
  removeOutput(name: string): boolean {
    const position = this.proto.output.findIndex((output) => output.name === name);
    if (position < 0) return false;
    this.proto.output.splice(position, 1);
    this.invalidate();
    return true;
  }

  // ---------------------------------------------------------------- index

  private current(): GraphIndex {
    const proto = this.proto;
    const index = this.index;
    if (
      index !== undefined &&
      index.nodes === proto.node &&
      index.nodeCount === proto.node.length &&
      index.initializerList === proto.initializer &&
      index.initializerCount === proto.initializer.length &&
      index.inputList === proto.input &&
      index.inputCount === proto.input.length
    ) {
      return index;
    }
    this.index = buildIndex(proto);
    return this.index;
  }
}

function buildIndex(proto: GraphProto): GraphIndex {
  const producers = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  const positions = new Map<NodeProto, number>();
  const uses = new Map<NodeProto, Set<string>>();
  proto.node.forEach((node, position) => {
    positions.set(node, position);
    for (const output of node.output) if (output !== '' && !producers.has(output)) producers.set(output, node);
    const used = namesUsedBy(node);
    uses.set(node, used);
    for (const name of used) {
      const list = consumers.get(name);
      if (list === undefined) consumers.set(name, [node]);
      else list.push(node);
    }
  });
  const initializers = new Map<string, TensorProto>();
  for (const tensor of proto.initializer) if (!initializers.has(tensor.name)) initializers.set(tensor.name, tensor);
  const names = new Set<string>();
  collectNames(proto, names);
  return {
    nodes: proto.node,
    nodeCount: proto.node.length,
    initializerList: proto.initializer,
    initializerCount: proto.initializer.length,
    inputList: proto.input,
    inputCount: proto.input.length,
    producers,
    consumers,
    positions,
    uses,
    initializers,
    inputNames: new Set(proto.input.map((input) => input.name)),
    names,
  };
}

/** The tensor a Constant node outputs, built from whichever `value*` attribute it has. */
function constantNodeValue(node: NodeProto, name: string): TensorProto | undefined {
  const value = findAttribute(node, 'value')?.t;
  if (value !== undefined) return value;
  const scalarOrList = (attribute: string): AttributeProto | undefined => findAttribute(node, attribute);
  let found = scalarOrList('value_float');
  if (found !== undefined) return create(TensorProtoSchema, { name, dataType: DataType.FLOAT, floatData: [found.f] });
  found = scalarOrList('value_floats');
  if (found !== undefined) {
    return create(TensorProtoSchema, { name, dataType: DataType.FLOAT, dims: [BigInt(found.floats.length)], floatData: [...found.floats] });
  }
  found = scalarOrList('value_int');
  if (found !== undefined) return create(TensorProtoSchema, { name, dataType: DataType.INT64, int64Data: [found.i] });
  found = scalarOrList('value_ints');
  if (found !== undefined) {
    return create(TensorProtoSchema, { name, dataType: DataType.INT64, dims: [BigInt(found.ints.length)], int64Data: [...found.ints] });
  }
  found = scalarOrList('value_string');
  if (found !== undefined) return create(TensorProtoSchema, { name, dataType: DataType.STRING, stringData: [found.s] });
  found = scalarOrList('value_strings');
  if (found !== undefined) {
    const dims = [BigInt(found.strings.length)];
    return create(TensorProtoSchema, { name, dataType: DataType.STRING, dims, stringData: [...found.strings] });
  }
  return undefined; // sparse_value: no dense form here
}

/** A `ValueInfoProto` for a tensor; `shape` entries are fixed sizes or symbolic names. */
export function makeTensorValueInfo(
  name: string,
  elemType: DataType,
  shape?: readonly (number | string)[],
): ValueInfoProto {
  const dim = shape?.map((d) =>
    typeof d === 'number'
      ? { value: { case: 'dimValue' as const, value: BigInt(d) } }
      : { value: { case: 'dimParam' as const, value: d } },
  );
  return create(ValueInfoProtoSchema, {
    name,
    type: { value: { case: 'tensorType', value: { elemType, ...(dim === undefined ? {} : { shape: { dim } }) } } },
  });
}

/** Binary min-heap of node positions, so Kahn's algorithm keeps file order among ready nodes. */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const items = this.items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as number) <= value) break;
      items[i] = items[parent] as number;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && (items[right] as number) < (items[left] as number) ? right : left;
      if ((items[child] as number) >= last) break;
      items[i] = items[child] as number;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
