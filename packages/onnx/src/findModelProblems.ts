import { dataTypeByteSize, elementCount } from './tensor.js';
import { describeNode, isDefaultDomain, subgraphsOf } from './OnnxGraph.js';
import { DataLocation, type FunctionProto, type GraphProto, type ModelProto, type TensorProto } from './proto.js';

/** How many problems `findModelProblems` reports at most; one is enough to reject a file. */
const MAX_PROBLEMS = 20;

/**
 * Structural problems that make a decoded `ModelProto` unusable, as short sentences (empty when
 * none). Protobuf decoding is permissive (random bytes can decode "successfully"), so this is
 * what tells a model from garbage: a graph, an IR version, opset imports for every domain used,
 * an op type on every node, every name read by a node or listed as a graph output defined
 * (graph input, initializer, earlier scope, or node output), each name produced once, and
 * in-file tensor data matching its shape.
 */
export function findModelProblems(model: ModelProto): string[] {
  const problems: string[] = [];
  const report = (problem: string): boolean => {
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
    return problems.length < MAX_PROBLEMS;
  };
  if (model.graph === undefined) {
    report('it has no graph');
    return problems;
  }
  if (model.irVersion <= 0n) report('its IR version is not set');
  if (model.opsetImport.length === 0) report('it imports no operator set (opset_import is empty)');
  for (const opset of model.opsetImport) {
    if (opset.version <= 0n) report(`its opset import for domain "${opset.domain}" has no version`);
  }
  const importedDomains = new Set(model.opsetImport.map((opset) => (isDefaultDomain(opset.domain) ? '' : opset.domain)));
  const functionKeys = new Set(model.functions.map((f) => `${f.domain}\u0000${f.name}`));
  const context: CheckContext = { importedDomains, functionKeys, report };
  checkGraph(model.graph, new Set(), 'main graph', context);
  for (const fn of model.functions) checkFunction(fn, context);
  return problems;
}

interface CheckContext {
  readonly importedDomains: ReadonlySet<string>;
  readonly functionKeys: ReadonlySet<string>;
  readonly report: (problem: string) => boolean;
}

function checkGraph(graph: GraphProto, outerScope: ReadonlySet<string>, where: string, context: CheckContext): void {
  const { report } = context;
  const defined = new Set(outerScope);
  for (const input of graph.input) {
    if (input.name === '') report(`an input of the ${where} has no name`);
    defined.add(input.name);
  }
  for (const tensor of graph.initializer) {
    if (tensor.name === '') report(`an initializer of the ${where} has no name`);
    defined.add(tensor.name);
    const problem = tensorDataProblem(tensor);
    if (problem !== undefined) report(`initializer "${tensor.name}" of the ${where} ${problem}`);
  }
  for (const sparse of graph.sparseInitializer) if (sparse.values !== undefined) defined.add(sparse.values.name);

  // Nodes may be listed out of order (topologicalOrder fixes that), so collect every output first.
  const ownNames = new Set([...graph.input.map((input) => input.name), ...graph.initializer.map((t) => t.name)]);
  graph.node.forEach((node, position) => {
    for (const output of node.output) {
      if (output === '') continue;
      if (ownNames.has(output)) {
        report(`tensor "${output}" of the ${where} is defined twice (node ${describeNode(node, position)} redefines it)`);
      }
      ownNames.add(output);
      defined.add(output);
    }
  });
  for (const [position, node] of graph.node.entries()) {
    const label = describeNode(node, position);
    if (node.opType === '') {
      if (!report(`node #${position} of the ${where} has no op_type`)) return;
      continue;
    }
    checkNodeDomain(node.domain, node.opType, `node ${label} of the ${where}`, context);
    for (const input of node.input) {
      if (input !== '' && !defined.has(input)) {
        if (!report(`node ${label} of the ${where} reads "${input}", which no input, initializer or node defines`)) return;
      }
    }
    for (const attribute of node.attribute) {
      for (const tensor of [attribute.t, ...attribute.tensors]) {
        if (tensor === undefined) continue;
        const problem = tensorDataProblem(tensor);
        if (problem !== undefined) report(`attribute "${attribute.name}" of node ${label} ${problem}`);
      }
    }
    for (const subgraph of subgraphsOf(node)) checkGraph(subgraph, defined, `subgraph "${subgraph.name}" of node ${label}`, context);
  }
  for (const output of graph.output) {
    if (!defined.has(output.name)) report(`output "${output.name}" of the ${where} is not defined by any input, initializer or node`);
  }
}

function checkFunction(fn: FunctionProto, context: CheckContext): void {
  const where = `function "${fn.domain === '' ? '' : `${fn.domain}.`}${fn.name}"`;
  if (fn.name === '') context.report('a local function has no name');
  const defined = new Set(fn.input);
  for (const node of fn.node) for (const output of node.output) if (output !== '') defined.add(output);
  for (const [position, node] of fn.node.entries()) {
    const label = describeNode(node, position);
    if (node.opType === '') {
      context.report(`node #${position} of ${where} has no op_type`);
      continue;
    }
    for (const input of node.input) {
      if (input !== '' && !defined.has(input)) {
        context.report(`node ${label} of ${where} reads "${input}", which the function does not define`);
      }
    }
  }
  for (const output of fn.output) if (!defined.has(output)) context.report(`output "${output}" of ${where} is never produced`);
}

function checkNodeDomain(domain: string, opType: string, label: string, context: CheckContext): void {
  const key = isDefaultDomain(domain) ? '' : domain;
  if (context.importedDomains.has(key) || context.functionKeys.has(`${domain}\u0000${opType}`)) return;
  context.report(`${label} uses domain "${domain === '' ? 'ai.onnx' : domain}", which has no opset import`);
}

/** Why the in-file data of a tensor does not fit its shape, or undefined when it does. */
function tensorDataProblem(tensor: TensorProto): string | undefined {
  if (tensor.dataLocation === DataLocation.EXTERNAL || tensor.rawData.length === 0) return undefined;
  const bytes = dataTypeByteSize(tensor.dataType);
  if (bytes === undefined) return undefined;
  const expected = elementCount(tensor.dims) * bytes;
  if (tensor.rawData.length === expected) return undefined;
  return `has ${tensor.rawData.length} bytes of data but its shape [${tensor.dims.join(', ')}] needs ${expected}`;
}
