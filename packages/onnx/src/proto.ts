/**
 * The ONNX protobuf schema, generated from the official onnx.proto (ONNX 1.20) by
 * @bufbuild/protoc-gen-es and shipped as the pinned npm package `onnx-buf`. Everything in this
 * package goes through this module, so the schema source can be swapped in one place.
 */
export {
  AttributeProto_AttributeType as AttributeType,
  AttributeProtoSchema,
  FunctionProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  SparseTensorProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation as DataLocation,
  TensorProto_DataType as DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
} from 'onnx-buf';
export type {
  AttributeProto,
  FunctionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  OperatorSetIdProto,
  SparseTensorProto,
  StringStringEntryProto,
  TensorProto,
  TensorShapeProto,
  TensorShapeProto_Dimension,
  TrainingInfoProto,
  TypeProto,
  ValueInfoProto,
} from 'onnx-buf';
