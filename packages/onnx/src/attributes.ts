import { create } from '@bufbuild/protobuf';
import {
  type AttributeProto,
  AttributeProtoSchema,
  AttributeType,
  type NodeProto,
  type TensorProto,
} from './proto.js';

/** The attribute of a node by name, or undefined. */
export function findAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number, or `fallback` when absent (the op's default). */
export function getIntAttribute(node: NodeProto, name: string, fallback: number): number;
export function getIntAttribute(node: NodeProto, name: string): number | undefined;
export function getIntAttribute(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = findAttribute(node, name);
  return a === undefined ? fallback : Number(a.i);
}

/** An INTS attribute as numbers, or `fallback` when absent. */
export function getIntsAttribute(node: NodeProto, name: string, fallback: number[]): number[];
export function getIntsAttribute(node: NodeProto, name: string): number[] | undefined;
export function getIntsAttribute(node: NodeProto, name: string, fallback?: number[]): number[] | undefined {
  const a = findAttribute(node, name);
  return a === undefined ? fallback : a.ints.map(Number);
}

/** A FLOAT attribute, or `fallback` when absent. */
export function getFloatAttribute(node: NodeProto, name: string, fallback: number): number;
export function getFloatAttribute(node: NodeProto, name: string): number | undefined;
export function getFloatAttribute(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = findAttribute(node, name);
  return a === undefined ? fallback : a.f;
}

/** A STRING attribute decoded as UTF-8, or `fallback` when absent. */
export function getStringAttribute(node: NodeProto, name: string, fallback: string): string;
export function getStringAttribute(node: NodeProto, name: string): string | undefined;
export function getStringAttribute(node: NodeProto, name: string, fallback?: string): string | undefined {
  const a = findAttribute(node, name);
  return a === undefined ? fallback : new TextDecoder().decode(a.s);
}

/** A TENSOR attribute (e.g. Constant's `value`), or undefined. */
export function getTensorAttribute(node: NodeProto, name: string): TensorProto | undefined {
  return findAttribute(node, name)?.t;
}

/** Attribute values accepted by `makeAttribute`. */
export type AttributeValue = number | bigint | string | number[] | bigint[] | string[] | TensorProto;

/**
 * A new attribute. Plain numbers become INT when integral and `asFloat` is not set, otherwise
 * FLOAT; arrays likewise become INTS or FLOATS.
 */
export function makeAttribute(name: string, value: AttributeValue, asFloat = false): AttributeProto {
  if (typeof value === 'bigint') return create(AttributeProtoSchema, { name, type: AttributeType.INT, i: value });
  if (typeof value === 'number') {
    return !asFloat && Number.isInteger(value)
      ? create(AttributeProtoSchema, { name, type: AttributeType.INT, i: BigInt(value) })
      : create(AttributeProtoSchema, { name, type: AttributeType.FLOAT, f: value });
  }
  if (typeof value === 'string') {
    return create(AttributeProtoSchema, { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) {
    const items = value as readonly (number | bigint | string)[];
    if (items.every((v) => typeof v === 'string')) {
      const strings = (items as string[]).map((v) => new TextEncoder().encode(v));
      return create(AttributeProtoSchema, { name, type: AttributeType.STRINGS, strings });
    }
    if (!asFloat && items.every((v) => typeof v === 'bigint' || Number.isInteger(v))) {
      return create(AttributeProtoSchema, { name, type: AttributeType.INTS, ints: items.map((v) => BigInt(v)) });
    }
    return create(AttributeProtoSchema, { name, type: AttributeType.FLOATS, floats: items.map(Number) });
  }
  return create(AttributeProtoSchema, { name, type: AttributeType.TENSOR, t: value });
}
