import { clone, create } from '@bufbuild/protobuf';
import { ConfigError, ModelFormatError, UnsupportedOperationError } from '@open-autoglm/core';
import { isParameterInput } from '../countModelStats.js';
import { type Dim, inferShapes, tensorTypeOf, type TensorTypeInfo, toValueInfo } from '../inferShapes.js';
import { describeNode, isDefaultDomain, OnnxGraph } from '../OnnxGraph.js';
import { OnnxModel } from '../OnnxModel.js';
import { DataType, type GraphProto, type ModelProto, type NodeProto, type ValueInfoProto, StringStringEntryProtoSchema, TensorProtoSchema } from '../proto.js';
import { dataTypeName, elementCount, tensorDims } from '../tensor.js';
import { removeDeadNodes } from '../transforms/removeDeadNodes.js';
import { addLoss } from './addLoss.js';
import { raiseOpsetTo17 } from './raiseOpsetTo17.js';
import { addOptimizerUpdate, type ParameterGradient, resolveOptimizer } from './addOptimizerUpdate.js';
import type { GradientRule, GradientRuleTable } from './GradientRule.js';
import { type ForwardRewriteEffects, forwardRewriteContext, gradientContext } from './ruleContexts.js';
import { convolutionGradientRules } from './rules/convolutionGradients.js';
import { gradientRules } from './rules/index.js';
import { StepGraphBuilder } from './StepGraphBuilder.js';
import {
  type ConvolutionInputGradient,
  type LossTerm,
  type StepTensor,
  TRAINING_STEP_METADATA_KEY,
  type TrainedParameter,
  type TrainingBuffer,
  type TrainingStepSignature,
  type TrainingStepSpec,
} from './TrainingStepSpec.js';

/** A training-step model and the description of its inputs and outputs. */
export interface TrainingStep {
  readonly model: OnnxModel;
  readonly signature: TrainingStepSignature;
}

/** The lowest opset the step graphs are written for (LayerNormalization, ReduceSum axes as input). */
const MIN_OPSET = 17;

const FLOAT_TYPES: ReadonlySet<DataType> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);

const CONVOLUTION_INPUT_GRADIENTS: readonly ConvolutionInputGradient[] = ['transposedConv', 'flippedConv'];

/**
 * Builds one training step of `model` as an ONNX model of standard operators (opset >= 17):
 * forward pass, loss, reverse-mode gradients, and the optimizer update. onnxruntime runs it as a
 * plain inference session; feed it the current parameters and optimizer state with a batch, and
 * feed its updated values back for the next step (see `TrainingStepSignature` for the exact
 * inputs and outputs; `describeTrainingStep` reads it back from a saved step model, and
 * `initialTrainingState` gives the values of the first step, `writeTrainedParameters` puts the
 * trained values back into the source model).
 *
 * The gradients follow the rules of `gradientRules` (plus `spec.rules`): reverse topological
 * order from the loss, summing the contributions of a tensor's consumers. Only nodes on a path
 * from a trainable parameter to the loss need a rule; one that has none fails the build with
 * UnsupportedOperationError naming every such node and the supported ops. Integer tensors carry
 * no gradient. The batch size stays dynamic. A model below opset 17 is raised to 17 first (from
 * opset 11 on; see `raiseOpsetTo17`).
 *
 * The source model is not modified. Parameters that an exporter merged into one initializer
 * read through Identity nodes are untied (PyTorch trains them separately).
 */
export function buildTrainingStep(source: OnnxModel | ModelProto, spec: TrainingStepSpec): TrainingStep {
  checkLossTerms(spec.loss);
  const optimizer = resolveOptimizer(spec.optimizer);
  const mode = spec.mode ?? 'train';
  if (spec.convolutionInputGradient !== undefined && !CONVOLUTION_INPUT_GRADIENTS.includes(spec.convolutionInputGradient)) {
    throw new ConfigError(
      `The training-step spec's convolutionInputGradient is "${String(spec.convolutionInputGradient)}". ` +
        `Use one of ${CONVOLUTION_INPUT_GRADIENTS.map((g) => `"${g}"`).join(', ')}, or leave it out for the default.`,
    );
  }
  const rules: GradientRuleTable = {
    ...gradientRules,
    ...(spec.convolutionInputGradient === undefined ? {} : convolutionGradientRules(spec.convolutionInputGradient)),
    ...spec.rules,
  };
  const model = (source instanceof OnnxModel ? source : new OnnxModel(source)).clone();
  raiseOpsetTo17(model);
  const opset = model.opsetVersion('') ?? MIN_OPSET;
  if (model.proto.irVersion < 8n) model.proto.irVersion = 8n;
  const graph = model.graph.proto;

  const aliasSources = untieAliasedParameters(graph);
  const { trainable, frozen } = chooseTrainable(graph, spec);
  const builder = new StepGraphBuilder(graph, Math.max(opset, MIN_OPSET), inferShapes(model.proto).shapes);

  // Forward rewrites (BatchNorm batch statistics, active Dropout, ...), then fresh shapes.
  const bufferUpdates = new Map<string, string>();
  let rewritten = false;
  for (const node of new OnnxGraph(graph).topologicalOrder()) {
    const rule = ruleFor(rules, node);
    if (rule?.rewriteForward === undefined) continue;
    const effects: ForwardRewriteEffects = { removed: false, bufferUpdates };
    builder.scope = node.name === '' ? node.opType : node.name;
    rule.rewriteForward(forwardRewriteContext(builder, node, mode, effects));
    if (effects.removed) graph.node.splice(graph.node.indexOf(node), 1);
    rewritten = true;
  }
  if (rewritten) builder.shapes = inferShapes(model.proto).shapes;
  const buffers = checkBuffers(graph, bufferUpdates, trainable, builder);

  const logits = spec.logits ?? graph.output[0]?.name;
  if (logits === undefined || builder.dims(logits) === undefined && !graph.node.some((n) => n.output.includes(logits))) {
    throw new ConfigError(`The loss reads logits "${String(logits)}", which is not a tensor of the model. Name an existing tensor with the spec's \`logits\`.`);
  }
  const batchInputs = batchInputsOf(graph);
  const firstDim = batchInputs[0]?.dims[0];
  const batchSymbol = typeof firstDim === 'string' ? firstDim : 'batch';

  // Which tensors depend on a trainable parameter (only float tensors carry gradients).
  const forwardOrder = new OnnxGraph(graph).topologicalOrder();
  const dependsOnParameter = new Set<string>(trainable);
  for (const node of forwardOrder) {
    if (!node.input.some((name) => dependsOnParameter.has(name))) continue;
    const carriesIntegers = ruleFor(rules, node)?.integerOutputsCarryGradient === true;
    for (const output of node.output) {
      if (output !== '' && (carriesIntegers || isFloatTensor(builder.shapes.get(output)))) dependsOnParameter.add(output);
    }
  }

  builder.scope = 'loss';
  const lossGraph = addLoss(builder, { terms: spec.loss, logits, trainable, batchSymbol });

  // Which of those reach the loss; the nodes between need gradient rules.
  const reachesLoss = new Set<string>([...lossGraph.seeds.keys()].filter((name) => dependsOnParameter.has(name)));
  const activeNodes: NodeProto[] = [];
  for (const node of [...forwardOrder].reverse()) {
    if (!node.output.some((name) => reachesLoss.has(name) && dependsOnParameter.has(name))) continue;
    activeNodes.push(node);
    for (const input of node.input) if (dependsOnParameter.has(input)) reachesLoss.add(input);
  }
  checkRulesExist(activeNodes, rules);

  const contributions = new Map<string, string[]>();
  for (const [name, list] of lossGraph.seeds) if (dependsOnParameter.has(name)) contributions.set(name, [...list]);
  const gradientOf = (name: string): string | undefined => {
    const list = contributions.get(name);
    if (list === undefined || list.length === 0) return undefined;
    if (list.length > 1) {
      const sum = builder.op('Sum', list);
      contributions.set(name, [sum]);
      return sum;
    }
    return list[0];
  };
  for (const node of activeNodes) {
    const rule = ruleFor(rules, node) as GradientRule;
    builder.scope = `grad/${node.name === '' ? node.opType : node.name}`;
    const outputGradient = (slot: number): string | undefined => {
      const output = node.output[slot];
      return output !== undefined && output !== '' && reachesLoss.has(output) && dependsOnParameter.has(output) ? gradientOf(output) : undefined;
    };
    const gradients = rule.backward(gradientContext(builder, node, mode, (name) => dependsOnParameter.has(name), outputGradient));
    node.input.forEach((input, slot) => {
      if (!dependsOnParameter.has(input)) return;
      const gradient = gradients[slot];
      if (gradient === undefined) {
        throw new UnsupportedOperationError(
          `Cannot train through node ${describeNode(node)}: its gradient rule gives no gradient for input ${slot} ("${input}"), ` +
            'which depends on a trainable parameter. Freeze the parameters that feed it (spec.frozen), or add a rule (spec.rules).',
        );
      }
      const list = contributions.get(input);
      if (list === undefined) contributions.set(input, [gradient]);
      else list.push(gradient);
    });
  }

  const withGradients: ParameterGradient[] = [];
  const unused: string[] = [];
  for (const name of trainable) {
    const gradient = gradientOf(name);
    const tensor = graph.initializer.find((t) => t.name === name);
    if (gradient === undefined || tensor === undefined) unused.push(name);
    else withGradients.push({ name, initializer: aliasSources.get(name) ?? name, gradient, dims: tensorDims(tensor) });
  }
  if (withGradients.length === 0) {
    throw new ConfigError(
      'The loss does not depend on any trainable parameter, so there is nothing to train. ' +
        'Check the spec: `logits`, the mse student tensors, and the trainable/frozen parameter lists.',
    );
  }

  const step = builder.fresh('step');
  const learningRate = builder.fresh('learning_rate');
  const trained = addOptimizerUpdate(builder, optimizer, withGradients, learningRate, step);
  const parameters: TrainedParameter[] = trained.map((parameter, i) => {
    if (spec.exposeGradients !== true) return parameter;
    const gradient = builder.fresh(`gradient.${parameter.name}`);
    builder.addNamed('Identity', [(withGradients[i] as ParameterGradient).gradient], [gradient]);
    return { ...parameter, gradient };
  });

  const signature: TrainingStepSignature = {
    version: 1,
    mode,
    optimizer,
    lossTerms: spec.loss,
    parameters,
    buffers,
    frozen,
    unused,
    step,
    learningRate,
    batchInputs,
    ...(lossGraph.labels === undefined ? {} : { labels: lossGraph.labels }),
    ...(lossGraph.teacherLogits === undefined ? {} : { teacherLogits: lossGraph.teacherLogits }),
    teacherFeatures: lossGraph.teacherFeatures,
    loss: lossGraph.loss,
    ...(lossGraph.correct === undefined ? {} : { correct: lossGraph.correct }),
    logits,
  };
  writeSignature(model, graph, signature);
  // Parameters and buffers are fed: their initializers would be unreachable defaults (see TrainingStepSignature).
  const fed = new Set([...parameters.map((p) => p.name), ...buffers.map((b) => b.name)]);
  graph.initializer = graph.initializer.filter((t) => !fed.has(t.name));
  removeDeadNodes(model.proto);
  new OnnxGraph(graph).sortTopologically();
  const problems = model.problems();
  if (problems.length > 0) {
    throw new ModelFormatError(`buildTrainingStep produced an invalid graph (a bug in a gradient rule): ${problems.slice(0, 3).join('; ')}.`);
  }
  return { model, signature };
}

function checkLossTerms(terms: readonly LossTerm[]): void {
  if (terms.length === 0) throw new ConfigError('The training-step spec has no loss terms. Add one, e.g. { kind: "crossEntropy" }.');
  for (const term of terms) {
    const weight = term.kind === 'weightDecay' ? term.coefficient : (term.weight ?? 1);
    if (!Number.isFinite(weight) || weight < 0) {
      throw new ConfigError(`The ${term.kind} loss term has weight ${weight}; use a finite number >= 0.`);
    }
    if (term.kind === 'distillation') {
      if (!(term.temperature > 0) || !Number.isFinite(term.temperature)) {
        throw new ConfigError(`The distillation loss term has temperature ${term.temperature}; use a number > 0 (typically 2 to 8).`);
      }
      if (!(term.alpha >= 0 && term.alpha <= 1)) {
        throw new ConfigError(`The distillation loss term has alpha ${term.alpha}; use a number in [0, 1] (the weight of the KL term).`);
      }
    }
    if (term.kind === 'mse' && term.pairs.length === 0) {
      throw new ConfigError('The mse loss term has no pairs. Add { student: "<tensor name>" } entries.');
    }
  }
}

function ruleFor(rules: GradientRuleTable, node: NodeProto): GradientRule | undefined {
  return isDefaultDomain(node.domain) && Object.hasOwn(rules, node.opType) ? rules[node.opType] : undefined;
}

function isFloatTensor(info: TensorTypeInfo | undefined): boolean {
  // An unknown type is assumed to be float: better to ask for a rule than to drop a gradient.
  return info === undefined || info.dataType === DataType.UNDEFINED || FLOAT_TYPES.has(info.dataType);
}

/**
 * Exporters store identical parameters once and read the copy through an Identity; PyTorch
 * still trains them separately. Each such Identity becomes an initializer of its own. Returns
 * the source initializer of each new one.
 */
function untieAliasedParameters(graph: GraphProto): Map<string, string> {
  const sources = new Map<string, string>();
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const inputs = new Set(graph.input.map((i) => i.name));
  const outputs = new Set(graph.output.map((o) => o.name));
  const untied: NodeProto[] = [];
  for (const node of graph.node) {
    const source = initializers.get(node.input[0] ?? '');
    const output = node.output[0];
    if (node.opType !== 'Identity' || !isDefaultDomain(node.domain) || source === undefined || output === undefined) continue;
    if (!FLOAT_TYPES.has(source.dataType) || inputs.has(source.name) || outputs.has(output)) continue;
    const copy = clone(TensorProtoSchema, source);
    copy.name = output;
    graph.initializer.push(copy);
    initializers.set(output, copy);
    sources.set(output, sources.get(source.name) ?? source.name);
    untied.push(node);
  }
  if (untied.length > 0) graph.node = graph.node.filter((node) => !untied.includes(node));
  return sources;
}

/** Parameters by the default rule (see `isParameterInput`), in the order nodes first read them. */
function defaultParameters(graph: GraphProto): string[] {
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const found = new Set<string>();
  for (const node of new OnnxGraph(graph).topologicalOrder()) {
    node.input.forEach((name, slot) => {
      const tensor = initializers.get(name);
      if (tensor === undefined || found.has(name)) return;
      if (isParameterInput(node, slot, tensor.dataType, elementCount(tensor.dims))) found.add(name);
    });
  }
  return [...found];
}

function chooseTrainable(graph: GraphProto, spec: TrainingStepSpec): { trainable: string[]; frozen: string[] } {
  const defaults = defaultParameters(graph);
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const list = (names: readonly string[]): string =>
    names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')} (and ${names.length - 12} more)`;
  let trainable: string[];
  if (spec.trainable !== undefined) {
    const wrong = spec.trainable.filter((name) => initializers.get(name)?.dataType !== DataType.FLOAT);
    if (wrong.length > 0) {
      throw new ConfigError(
        `Cannot train ${list(wrong)}: trainable parameters must be float32 initializers of the model. Its parameters are: ${list(defaults)}.`,
      );
    }
    trainable = [...new Set(spec.trainable)];
  } else {
    const unknown = (spec.frozen ?? []).filter((name) => !defaults.includes(name));
    if (unknown.length > 0) {
      throw new ConfigError(`Cannot freeze ${list(unknown)}: not parameters of the model. Its parameters are: ${list(defaults)}.`);
    }
    const frozenSet = new Set(spec.frozen);
    trainable = defaults.filter((name) => !frozenSet.has(name));
    const notFloat32 = trainable.filter((name) => initializers.get(name)?.dataType !== DataType.FLOAT);
    if (notFloat32.length > 0) {
      throw new UnsupportedOperationError(
        `Parameters ${list(notFloat32)} are not float32 (training steps are built in float32). Freeze them (spec.frozen) or convert the model to float32.`,
      );
    }
  }
  const trainableSet = new Set(trainable);
  return { trainable, frozen: defaults.filter((name) => !trainableSet.has(name)) };
}

function checkRulesExist(nodes: readonly NodeProto[], rules: GradientRuleTable): void {
  // `nodes` runs from the loss backwards; list them in graph order.
  const missing = nodes.filter((node) => ruleFor(rules, node) === undefined).reverse();
  if (missing.length === 0) return;
  const described = missing.slice(0, 10).map((node) => describeNode(node));
  const more = missing.length > 10 ? ` (and ${missing.length - 10} more)` : '';
  throw new UnsupportedOperationError(
    `Cannot build the training step: no gradient rule for ${described.join(', ')}${more}, which ${missing.length === 1 ? 'lies' : 'lie'} ` +
      'between a trainable parameter and the loss. Freeze the parameters before those nodes (spec.frozen), or add rules (spec.rules). ' +
      `Ops with gradients: ${Object.keys(rules).sort().join(', ')}.`,
  );
}

/** The buffers declared by forward rewrites, each updated value given its signature name `updated.<buffer>`. */
function checkBuffers(graph: GraphProto, updates: ReadonlyMap<string, string>, trainable: readonly string[], builder: StepGraphBuilder): TrainingBuffer[] {
  const buffers: TrainingBuffer[] = [];
  for (const [name, updated] of updates) {
    const tensor = graph.initializer.find((t) => t.name === name);
    if (tensor === undefined || trainable.includes(name)) {
      throw new UnsupportedOperationError(
        `A gradient rule declared "${name}" a training buffer, but it is ${tensor === undefined ? 'not an initializer' : 'a trainable parameter'}. ` +
          'Only non-trainable initializers (e.g. BatchNorm running statistics) can be buffers; this is a bug in the rule.',
      );
    }
    const output = builder.fresh(`updated.${name}`);
    builder.addNamed('Identity', [updated], [output]);
    buffers.push({ name, updated: output, dims: tensorDims(tensor) });
  }
  return buffers;
}

function batchInputsOf(graph: GraphProto): StepTensor[] {
  const initializers = new Set(graph.initializer.map((t) => t.name));
  return graph.input
    .filter((input) => !initializers.has(input.name))
    .map((input) => {
      const info = tensorTypeOf(input);
      return { name: input.name, type: dataTypeName(info?.dataType ?? DataType.UNDEFINED), dims: info?.dims ?? [] };
    });
}

/** Sets the step's graph inputs, outputs and signature metadata. */
function writeSignature(model: OnnxModel, graph: GraphProto, signature: TrainingStepSignature): void {
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const declared = new Set(graph.input.map((i) => i.name));
  const addInput = (name: string, dataType: DataType, dims: readonly Dim[]): void => {
    if (declared.has(name)) return;
    declared.add(name);
    graph.input.push(toValueInfo(name, { dataType, dims: [...dims] }));
  };
  const output = (name: string, dataType: DataType, dims: readonly Dim[]): ValueInfoProto => toValueInfo(name, { dataType, dims: [...dims] });
  const stepTensorType = (tensor: StepTensor): DataType => (tensor.type === 'int64' ? DataType.INT64 : DataType.FLOAT);
  for (const parameter of signature.parameters) {
    addInput(parameter.name, DataType.FLOAT, parameter.dims);
    for (const state of parameter.state) addInput(state.name, DataType.FLOAT, state.dims);
  }
  for (const buffer of signature.buffers) addInput(buffer.name, initializers.get(buffer.name)?.dataType ?? DataType.FLOAT, buffer.dims);
  addInput(signature.step, DataType.INT64, []);
  addInput(signature.learningRate, DataType.FLOAT, []);
  for (const tensor of [signature.labels, signature.teacherLogits, ...signature.teacherFeatures]) {
    if (tensor !== undefined) addInput(tensor.name, stepTensorType(tensor), tensor.dims);
  }

  const outputs = [
    output(signature.loss, DataType.FLOAT, []),
    ...(signature.correct === undefined ? [] : [output(signature.correct, DataType.INT64, [])]),
  ];
  for (const parameter of signature.parameters) {
    outputs.push(output(parameter.updated, DataType.FLOAT, [...parameter.dims]));
    if (parameter.gradient !== undefined) outputs.push(output(parameter.gradient, DataType.FLOAT, [...parameter.dims]));
    for (const state of parameter.state) outputs.push(output(state.updated, DataType.FLOAT, [...state.dims]));
  }
  for (const buffer of signature.buffers) {
    outputs.push(output(buffer.updated, initializers.get(buffer.name)?.dataType ?? DataType.FLOAT, [...buffer.dims]));
  }
  graph.output = outputs;
  model.proto.metadataProps = [
    ...model.proto.metadataProps.filter((p) => p.key !== TRAINING_STEP_METADATA_KEY),
    create(StringStringEntryProtoSchema, { key: TRAINING_STEP_METADATA_KEY, value: JSON.stringify(signature) }),
  ];
}
