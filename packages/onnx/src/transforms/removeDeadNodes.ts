import { ModelFormatError } from '@open-autoglm/core';
import { namesUsedBy, OnnxGraph } from '../OnnxGraph.js';
import type { ModelProto, NodeProto } from '../proto.js';

export interface DeadNodeReport {
  /** Removed nodes (name, or `<opType>#<index>` for unnamed ones). */
  removedNodes: string[];
  /** Removed initializers. */
  removedInitializers: string[];
}

/**
 * Removes the nodes whose outputs reach no graph output, then the initializers nothing reads.
 * Graph inputs are kept, including initializers also listed as graph inputs (a caller may feed
 * them), so the model's signature does not change. Names read inside subgraphs (If/Loop/Scan
 * bodies) count as uses. Edits the model in place and reports what it removed.
 */
export function removeDeadNodes(model: ModelProto): DeadNodeReport {
  const graph = model.graph;
  if (graph === undefined) {
    throw new ModelFormatError('The model has no graph, so there are no nodes to remove. Re-export the model.');
  }
  const view = new OnnxGraph(graph);
  const live = new Set<string>(graph.output.map((o) => o.name));
  const liveNodes = new Set<NodeProto>();
  const pending = [...live];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const producer = view.producerOf(name);
    if (producer === undefined || liveNodes.has(producer)) continue;
    liveNodes.add(producer);
    for (const used of namesUsedBy(producer)) {
      if (!live.has(used)) {
        live.add(used);
        pending.push(used);
      }
    }
  }
  const dead = graph.node.filter((node) => !liveNodes.has(node));
  const removedNodes = dead.map((node) => nodeLabel(view, node));
  const deadOutputs = new Set(dead.flatMap((node) => node.output));
  view.removeNodes(dead);

  const graphInputs = new Set(graph.input.map((i) => i.name));
  const removedInitializers = graph.initializer
    .filter((t) => !live.has(t.name) && !graphInputs.has(t.name))
    .map((t) => t.name);
  for (const name of removedInitializers) view.removeInitializer(name);
  graph.valueInfo = graph.valueInfo.filter((v) => !deadOutputs.has(v.name) && !removedInitializers.includes(v.name));
  return { removedNodes, removedInitializers };
}

/**
 * After a transform stopped reading some tensors: removes those of them that nothing reads any
 * more, when they are initializers (not graph inputs) or outputs of Identity/Constant nodes,
 * and follows Identity chains back to their sources. Returns the removed names.
 */
export function removeUnusedConstants(view: OnnxGraph, candidates: Iterable<string>): string[] {
  const removed: string[] = [];
  const pending = [...candidates];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    if (name === '' || view.consumersOf(name).length > 0 || view.isGraphOutput(name) || view.isGraphInput(name)) continue;
    const producer = view.producerOf(name);
    if (producer !== undefined) {
      if (producer.opType !== 'Identity' && producer.opType !== 'Constant') continue;
      if (producer.output.some((o) => o !== name && o !== '' && view.consumersOf(o).length > 0)) continue;
      view.removeNode(producer);
      view.proto.valueInfo = view.proto.valueInfo.filter((v) => v.name !== name);
      removed.push(name);
      pending.push(...producer.input);
    } else if (view.removeInitializer(name) !== undefined) {
      view.proto.valueInfo = view.proto.valueInfo.filter((v) => v.name !== name);
      removed.push(name);
    }
  }
  return removed;
}

/** A node for reports: its name, or `<opType>#<index>` when unnamed. */
export function nodeLabel(view: OnnxGraph, node: NodeProto): string {
  return node.name !== '' ? node.name : `${node.opType}#${view.indexOfNode(node)}`;
}
