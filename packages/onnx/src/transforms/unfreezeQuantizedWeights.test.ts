import { ModelFormatError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../OnnxModel.js';
import { DataType, type TensorProto } from '../proto.js';
import { arrayToTensor, tensorToArray } from '../tensor.js';
import { buildModel, exposeTensors, randomArray, runModel } from '../test-support/testModels.js';
import { refreezeQuantizedWeights, unfreezeQuantizedWeights } from './unfreezeQuantizedWeights.js';

const tensor = (name: string, values: Int8Array | Uint8Array | Int32Array | Float32Array, dims: number[]): TensorProto => arrayToTensor(name, values, dims);

/**
 * y = (x @ dq(w) + dq(b)) @ dq(u) + x @ dq(w)': a per-channel int8 weight with non-zero zero points
 * read by two DequantizeLinear nodes (tied), an int32 bias, a per-tensor uint8 weight with zero
 * point 128.
 */
function qdqModel(): OnnxModel {
  return new OnnxModel(
    buildModel({
      inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 4] }],
      initializers: [
        tensor('w', Int8Array.of(-128, -7, 0, 3, 127, 5, -2, 9, 11, -64, 40, 1), [4, 3]),
        tensor('w_scale', Float32Array.of(0.0625, 0.03125, 0.125), [3]),
        tensor('w_zero_point', Int8Array.of(0, 3, -2), [3]),
        tensor('b', Int32Array.of(-300, 25, 1000), [3]),
        tensor('b_scale', Float32Array.of(2 ** -10, 2 ** -9, 2 ** -11), [3]),
        tensor('u', Uint8Array.of(0, 128, 255, 100, 140, 7, 200, 129, 60), [3, 3]),
        tensor('u_scale', Float32Array.of(2 ** -7), []),
        tensor('u_zero_point', Uint8Array.of(128), []),
      ],
      nodes: [
        { op: 'DequantizeLinear', inputs: ['w', 'w_scale', 'w_zero_point'], outputs: ['wa'], attributes: { axis: 1 }, name: 'w_dq_a' },
        { op: 'DequantizeLinear', inputs: ['w', 'w_scale', 'w_zero_point'], outputs: ['wb'], attributes: { axis: 1 }, name: 'w_dq_b' },
        { op: 'DequantizeLinear', inputs: ['b', 'b_scale'], outputs: ['bf'], attributes: { axis: 0 }, name: 'b_dq' },
        { op: 'DequantizeLinear', inputs: ['u', 'u_scale', 'u_zero_point'], outputs: ['uf'], name: 'u_dq' },
        { op: 'MatMul', inputs: ['x', 'wa'], outputs: ['h'], name: 'first' },
        { op: 'Add', inputs: ['h', 'bf'], outputs: ['hb'], name: 'bias' },
        { op: 'MatMul', inputs: ['hb', 'uf'], outputs: ['hu'], name: 'second' },
        { op: 'MatMul', inputs: ['x', 'wb'], outputs: ['t'], name: 'tied' },
        { op: 'Add', inputs: ['hu', 't'], outputs: ['y'], name: 'sum' },
      ],
      outputs: ['y'],
    }),
  );
}

async function forward(model: OnnxModel): Promise<Float32Array> {
  const x = new ort.Tensor('float32', randomArray(8, 3), [2, 4]);
  return (await runModel(model.proto, { x }))['y']?.data as Float32Array;
}

/** ONNX Runtime's output of one DequantizeLinear of the model. */
async function dequantizedInOnnxRuntime(model: OnnxModel, output: string): Promise<Float32Array> {
  const exposed = exposeTensors(model.proto, new Map([[output, DataType.FLOAT]]));
  return (await runModel(exposed, { x: new ort.Tensor('float32', new Float32Array(8), [2, 4]) }))[output]?.data as Float32Array;
}

/** ONNX Runtime's QuantizeLinear of `values`: the reference the export must match. */
async function quantizeInOnnxRuntime(values: Float32Array, dims: number[], scale: TensorProto, zeroPoint: TensorProto, axis?: number): Promise<ArrayLike<number>> {
  const model = buildModel(
    {
      inputs: [{ name: 'v', dataType: DataType.FLOAT, dims }],
      initializers: [scale, zeroPoint],
      nodes: [{ op: 'QuantizeLinear', inputs: ['v', scale.name, zeroPoint.name], outputs: ['q'], ...(axis === undefined ? {} : { attributes: { axis } }) }],
      outputs: ['q'],
    },
    { q: zeroPoint.dataType },
  );
  return (await runModel(model, { v: new ort.Tensor('float32', values, dims) }))['q']?.data as Int8Array | Uint8Array;
}

/** An integer initializer's values as numbers. */
function integers(model: OnnxModel, name: string): number[] {
  return Array.from(tensorToArray(initializer(model, name)), Number);
}

function initializer(model: OnnxModel, name: string): TensorProto {
  const found = model.graph.getInitializer(name);
  if (found === undefined) throw new Error(`no initializer ${name}`);
  return found;
}

describe('unfreezeQuantizedWeights', () => {
  it('should keep the forward pass, train a tied weight as one parameter, and refreeze to the same integers and names', async () => {
    const original = qdqModel();
    const model = qdqModel();
    const record = unfreezeQuantizedWeights(model);
    expect(record.weights.map((w) => w.quantized)).toEqual(['w', 'u']);
    expect(record.biases.map((b) => b.quantized)).toEqual(['b']);
    expect(model.problems()).toEqual([]);
    // No integer weight or bias is left, only zero points; the tied weight is one float behind one QuantizeLinear.
    expect(model.graph.initializers.filter((t) => t.dataType !== DataType.FLOAT).map((t) => t.name)).toEqual(['w_zero_point', 'u_zero_point']);
    const tied = record.weights[0]!;
    const quantizeNode = model.graph.nodes.find((n) => n.name === tied.quantizeNode)!;
    expect(model.graph.consumersOf(tied.float)).toEqual([quantizeNode]);
    expect(model.graph.consumersOf(quantizeNode.output[0]!).map((n) => n.name)).toEqual(['w_dq_a', 'w_dq_b']);
    expect(model.graph.consumersOf(record.biases[0]!.float).map((n) => n.name)).toEqual(['bias']);
    // Independent reference for the dequantized values: ONNX Runtime's own DequantizeLinear output.
    expect(tensorToArray(initializer(model, tied.float))).toEqual(await dequantizedInOnnxRuntime(original, 'wa'));
    expect(tensorToArray(initializer(model, record.weights[1]!.float))).toEqual(await dequantizedInOnnxRuntime(original, 'uf'));
    expect(await forward(model)).toEqual(await forward(original));

    refreezeQuantizedWeights(model, record);
    expect(model.problems()).toEqual([]);
    expect(model.graph.nodes.map((n) => n.name).sort()).toEqual(original.graph.nodes.map((n) => n.name).sort());
    expect(model.graph.initializers.map((t) => t.name).sort()).toEqual(original.graph.initializers.map((t) => t.name).sort());
    for (const name of ['w', 'b', 'u']) expect(tensorToArray(initializer(model, name))).toEqual(tensorToArray(initializer(original, name)));
    expect(model.graph.consumersOf('w').map((n) => n.name)).toEqual(['w_dq_a', 'w_dq_b']);
    expect(await forward(model)).toEqual(await forward(original));
  });

  it('should export changed float values as ONNX QuantizeLinear does (ties to even, zero points, clamped)', async () => {
    const model = qdqModel();
    const record = unfreezeQuantizedWeights(model);
    const [w, u] = record.weights as [(typeof record.weights)[0], (typeof record.weights)[0]];
    const b = record.biases[0]!;
    // Halfway values (x / scale = k + 0.5, exact with power-of-two scales), values beyond the
    // range on both sides, and ordinary ones; channel = index % 3 for w.
    const wValues = Float32Array.of(0.5 * 0.0625, 1.5 * 0.03125, 2.5 * 0.125, -1.5 * 0.0625, -0.01, -0.05, 9, -9, 13, 0.075, 0.07, -0.15);
    const uValues = Float32Array.of(0.5 * 2 ** -7, 1.5 * 2 ** -7, -0.5 * 2 ** -7, -2, 2, 0.3, -0.3, 0.125, 0.135);
    const bValues = Float32Array.of(2.5 * 2 ** -10, 3.5 * 2 ** -9, 1e9);
    model.graph.setInitializer(arrayToTensor(w.float, wValues, [4, 3]));
    model.graph.setInitializer(arrayToTensor(u.float, uValues, [3, 3]));
    model.graph.setInitializer(arrayToTensor(b.float, bValues, [3]));
    refreezeQuantizedWeights(model, record);

    const original = qdqModel();
    const expectedW = await quantizeInOnnxRuntime(wValues, [4, 3], initializer(original, 'w_scale'), initializer(original, 'w_zero_point'), 1);
    const expectedU = await quantizeInOnnxRuntime(uValues, [3, 3], initializer(original, 'u_scale'), initializer(original, 'u_zero_point'));
    expect(integers(model, 'w')).toEqual(Array.from(expectedW));
    expect(integers(model, 'u')).toEqual(Array.from(expectedU));
    // Worked by hand as well: 0.5 -> 0, 1.5 -> 2 (+3), 2.5 -> 2 (-2), -1.5 -> -2; 144 -> 127, -285 -> -128.
    expect(integers(model, 'w').slice(0, 8)).toEqual([0, 5, 0, -2, 3, -2, 127, -128]);
    expect(tensorToArray(initializer(model, 'u'))).toBeInstanceOf(Uint8Array);
    expect(integers(model, 'u').slice(0, 5)).toEqual([128, 130, 128, 0, 255]);
    // 2.5 -> 2, 3.5 -> 4 (half to even), 2e12 -> int32 max.
    expect(integers(model, 'b')).toEqual([2, 4, 2 ** 31 - 1]);
    expect(model.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.dims.length === 2)).toHaveLength(1);
  });

  it('should give an integer initializer read with two scales one parameter per scale, and keep it until the last is unfrozen', async () => {
    const original = new OnnxModel(
      buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [2, 4] }],
        initializers: [
          tensor('shared', Int8Array.from({ length: 16 }, (_, i) => 8 * i - 60), [4, 4]),
          tensor('small', Float32Array.of(2 ** -6), []),
          tensor('large', Float32Array.of(2 ** -3), []),
        ],
        nodes: [
          { op: 'DequantizeLinear', inputs: ['shared', 'small'], outputs: ['ws'], name: 'dq_small' },
          { op: 'DequantizeLinear', inputs: ['shared', 'large'], outputs: ['wl'], name: 'dq_large' },
          { op: 'MatMul', inputs: ['x', 'ws'], outputs: ['h'], name: 'first' },
          { op: 'MatMul', inputs: ['h', 'wl'], outputs: ['y'], name: 'second' },
        ],
        outputs: ['y'],
      }),
    );
    const model = original.clone();
    const record = unfreezeQuantizedWeights(model);
    expect(record.weights.map((w) => w.scale)).toEqual(['small', 'large']);
    expect(model.problems()).toEqual([]);
    expect(model.graph.getInitializer('shared')).toBeUndefined();
    expect(await forward(model)).toEqual(await forward(original));

    refreezeQuantizedWeights(model, record);
    expect(model.problems()).toEqual([]);
    const stored = (reader: string): number[] => integers(model, model.graph.nodes.find((n) => n.name === reader)!.input[0]!);
    expect(stored('dq_small')).toEqual(integers(original, 'shared'));
    expect(stored('dq_large')).toEqual(integers(original, 'shared'));
    expect(await forward(model)).toEqual(await forward(original));
  });

  it('should refuse, with one error and nothing changed, a model that lost a scale, a float parameter or a QuantizeLinear', () => {
    const model = qdqModel();
    const record = unfreezeQuantizedWeights(model);
    model.graph.removeInitializer('b_scale');
    model.graph.removeInitializer(record.weights[1]!.float);
    const quantizeNode = model.graph.nodes.find((n) => n.name === record.weights[0]!.quantizeNode)!;
    model.graph.replaceUses(quantizeNode.output[0]!, 'x');
    model.graph.removeNode(quantizeNode);
    const before = model.toBytes();
    let error: unknown;
    try {
      refreezeQuantizedWeights(model, record);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toMatch(/lost the float parameter "u\.float", the scale "b_scale" of "b", the QuantizeLinear node "w_dq_a\/fake_quantize"/);
    expect(model.toBytes()).toEqual(before);
  });
});
