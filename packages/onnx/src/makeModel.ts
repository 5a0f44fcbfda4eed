import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { type GraphProto, GraphProtoSchema, type ModelProto, ModelProtoSchema, OperatorSetIdProtoSchema } from './proto.js';

/** Options of `makeModel`; every field has the default the repository's own models use. */
export interface MakeModelOptions {
  /** Version of the default ONNX operator set (`''` domain). Default 17. */
  readonly opset?: number;
  /** Further operator sets, e.g. `{ 'com.microsoft': 1 }`. */
  readonly extraOpsets?: Readonly<Record<string, number>>;
  /** ONNX IR version. Default 8, the IR version of opset 17 (onnx's `make_model` picks the same). */
  readonly irVersion?: number;
  readonly producerName?: string;
  /** Model-level `metadata_props` (key -> value). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * A model around `graph`: what onnx.helper.make_model does for Python code. Builds the opset
 * imports and IR version so small hand-built graphs (tests, benchmarks, helper models such as
 * the runtime's call-floor probe) do not each repeat the protobuf preamble.
 */
export function makeModel(graph: GraphProto | MessageInitShape<typeof GraphProtoSchema>, options: MakeModelOptions = {}): ModelProto {
  const opsetImport = [
    create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(options.opset ?? 17) }),
    ...Object.entries(options.extraOpsets ?? {}).map(([domain, version]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) })),
  ];
  return create(ModelProtoSchema, {
    irVersion: BigInt(options.irVersion ?? 8),
    opsetImport,
    graph: create(GraphProtoSchema, graph),
    ...(options.producerName === undefined ? {} : { producerName: options.producerName }),
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}
