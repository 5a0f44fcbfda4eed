import { create } from '@bufbuild/protobuf';
import { ConfigError } from '@open-autoglm/core';
import { makeNode, OnnxModel, ValueInfoProtoSchema, type ValueInfoProto } from '@open-autoglm/onnx';
import type { ModelSource } from './session.js';

/** Names of the scalar outputs that carry a tensor's minimum and maximum. */
export interface MinMaxOutputNames {
  readonly min: string;
  readonly max: string;
  /**
   * The sum of `x - x`: 0 when every element is finite, NaN when one is NaN or +-Inf. Needed because
   * onnxruntime's ReduceMin/ReduceMax skip NaN (unless it is the first element), so a NaN the model
   * computes would otherwise leave no trace in the min and max.
   */
  readonly nonFiniteCheck: string;
}

export interface MinMaxModel {
  /** A copy of the model with the reductions added. */
  readonly model: OnnxModel;
  /** Tensor name -> names of its min and max outputs. */
  readonly outputs: ReadonlyMap<string, MinMaxOutputNames>;
}

/**
 * A copy of the model with the given tensors added as graph outputs, so a session can fetch them
 * (onnxruntime only returns graph outputs). Tensors that already are outputs are left alone.
 */
export function exposeTensors(model: OnnxModel, tensorNames: readonly string[]): OnnxModel {
  checkTensorNames(model, tensorNames);
  const copy = model.clone();
  for (const name of new Set(tensorNames)) copy.graph.addOutput(untypedValueInfo(name));
  return copy;
}

/**
 * A copy of the model with ReduceMin and ReduceMax over all axes (keepdims=0) of each given
 * tensor, as scalar graph outputs: statistics are computed inside the graph and only two numbers
 * per tensor cross into JavaScript, plus a third scalar that is NaN when the tensor holds NaN or
 * Inf (see `MinMaxOutputNames.nonFiniteCheck`). Leaving out `axes` reduces over every axis in all
 * opsets (it became an input in opset 18, it was an attribute before).
 */
export function addMinMaxOutputs(model: OnnxModel, tensorNames: readonly string[]): MinMaxModel {
  checkTensorNames(model, tensorNames);
  const copy = model.clone();
  const graph = copy.graph;
  const outputs = new Map<string, MinMaxOutputNames>();
  for (const tensor of new Set(tensorNames)) {
    const names = {
      min: graph.uniqueName(`${tensor}/autoglm_min`),
      max: graph.uniqueName(`${tensor}/autoglm_max`),
      nonFiniteCheck: graph.uniqueName(`${tensor}/autoglm_nonfinite_check`),
    };
    for (const [opType, output] of [
      ['ReduceMin', names.min],
      ['ReduceMax', names.max],
    ] as const) {
      graph.addNode(makeNode(opType, [tensor], [output], { keepdims: 0 }, graph.uniqueName(`autoglm/${opType}/${tensor}`)));
      graph.addOutput(untypedValueInfo(output));
    }
    // x - x works for every numeric type (integers give 0), with no constant to type.
    const difference = graph.uniqueName(`${tensor}/autoglm_self_difference`);
    graph.addNode(makeNode('Sub', [tensor, tensor], [difference], {}, graph.uniqueName(`autoglm/Sub/${tensor}`)));
    graph.addNode(makeNode('ReduceSum', [difference], [names.nonFiniteCheck], { keepdims: 0 }, graph.uniqueName(`autoglm/ReduceSum/${tensor}`)));
    graph.addOutput(untypedValueInfo(names.nonFiniteCheck));
    outputs.set(tensor, names);
  }
  return { model: copy, outputs };
}

/** The model as an OnnxModel: read from a path (with its external data) or decoded from bytes. */
export async function toOnnxModel(model: ModelSource | OnnxModel): Promise<OnnxModel> {
  if (model instanceof OnnxModel) return model;
  return typeof model === 'string' ? OnnxModel.load(model) : OnnxModel.fromBytes(model);
}

/**
 * An output entry without a type: onnxruntime infers it, whereas the producer's type is often not
 * recorded in the file (no value_info), and elem_type 0 would be rejected.
 */
function untypedValueInfo(name: string): ValueInfoProto {
  return create(ValueInfoProtoSchema, { name });
}

function checkTensorNames(model: OnnxModel, tensorNames: readonly string[]): void {
  const label = model.source ?? '(in-memory model)';
  if (tensorNames.length === 0) {
    // A run that fetches nothing would only waste time.
    throw new ConfigError('No tensor names given. Name the tensors to observe, e.g. the outputs of every Conv node.');
  }
  const graph = model.graph;
  const missing = tensorNames.filter(
    (name) => graph.producerOf(name) === undefined && !graph.isGraphInput(name) && graph.getInitializer(name) === undefined,
  );
  if (missing.length > 0) {
    // Identity/Constant outputs are usually weights plumbing, not activations worth observing.
    const examples = graph.nodes
      .filter((n) => n.opType !== 'Identity' && n.opType !== 'Constant')
      .slice(0, 3)
      .flatMap((n) => n.output)
      .map((n) => `"${n}"`)
      .join(', ');
    throw new ConfigError(
      `Model ${label} has no tensor ${missing.map((n) => `"${n}"`).join(', ')} in its main graph ` +
        `(not a graph input, initializer or node output). Use node output names, e.g. ${examples}.`,
      { file: model.source },
    );
  }
}
