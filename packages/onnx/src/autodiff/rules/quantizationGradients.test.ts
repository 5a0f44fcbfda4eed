import { toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DataType, ModelProtoSchema } from '../../proto.js';
import { arrayToTensor } from '../../tensor.js';
import { buildModel, randomArray } from '../../test-support/testModels.js';
import { checkGradients } from '../test-support/checkGradients.js';

function roundHalfEven(value: number): number {
  const rounded = Math.round(value);
  return Math.abs(value % 1) === 0.5 ? 2 * Math.round(value / 2) : rounded;
}

interface FakeQuantCase {
  dims: number[];
  scale: number[];
  zeroPoint: number[];
  zeroPointType: DataType;
  range: [number, number];
  axis?: number;
}

/** The analytic gradient of x through Q -> DQ against dY masked to the representable range (computed here). */
async function checkFakeQuant({ dims, scale, zeroPoint, zeroPointType, range, axis = 1 }: FakeQuantCase): Promise<{ worst: number; clipped: number }> {
  const count = dims.reduce((a, b) => a * b, 1);
  const x = Float32Array.from(randomArray(count, 5), (v) => 3 * v);
  const parameterDims = scale.length === 1 ? [] : [scale.length];
  const zeroPointData = zeroPointType === DataType.INT8 ? Int8Array.from(zeroPoint) : Uint8Array.from(zeroPoint);
  const nodes = [
    { op: 'QuantizeLinear', inputs: ['x', 'scale', 'zero_point'], outputs: ['q'], attributes: { axis } },
    { op: 'DequantizeLinear', inputs: ['q', 'scale', 'zero_point'], outputs: ['y'], attributes: { axis } },
  ];
  // The zero point is an int8/uint8 initializer of the forward model: built here, as checkGradients feeds only float and int64.
  const forward = buildModel({
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims }],
    outputs: ['y'],
    nodes,
    initializers: [
      arrayToTensor('scale', Float32Array.from(scale), parameterDims),
      arrayToTensor('zero_point', zeroPointData, parameterDims, zeroPointType),
    ],
  });
  const session = await ort.InferenceSession.create(toBinary(ModelProtoSchema, forward));
  const y = (await session.run({ x: new ort.Tensor('float32', x, dims) })).y?.data as Float32Array;
  await session.release();
  const result = await checkGradients({
    nodes: [
      { op: 'Cast', inputs: ['zp_float'], outputs: ['zp_rounded'], attributes: { to: zeroPointType } },
      { op: 'QuantizeLinear', inputs: ['x', 'scale', 'zp_rounded'], outputs: ['q'], attributes: { axis } },
      { op: 'DequantizeLinear', inputs: ['q', 'scale', 'zp_rounded'], outputs: ['y'], attributes: { axis } },
    ],
    inputs: [
      { name: 'x', dims, data: x },
      { name: 'scale', dims: parameterDims, data: Float32Array.from(scale), differentiable: false },
      { name: 'zp_float', dims: parameterDims, data: Float32Array.from(zeroPoint), differentiable: false },
    ],
    outputs: ['y'],
  });
  const analytic = result.inputs.x?.analytic as Float32Array;
  const targets = randomArray(count, 99);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  let worst = 0;
  let clipped = 0;
  for (let i = 0; i < count; i++) {
    const channel = scale.length === 1 ? 0 : Math.floor(i / inner) % scale.length;
    const level = roundHalfEven((x[i] as number) / (scale[channel] as number)) + (zeroPoint[channel] as number);
    const inside = level >= range[0] && level <= range[1];
    if (!inside) clipped++;
    const expected = inside ? (2 * ((y[i] as number) - (targets[i] as number))) / count : 0;
    worst = Math.max(worst, Math.abs(expected - (analytic[i] as number)));
  }
  return { worst, clipped };
}

describe('quantizationGradients', () => {
  it('should pass the gradient straight through a per-tensor uint8 fake quantization, zero where clamped', async () => {
    const { worst, clipped } = await checkFakeQuant({ dims: [4, 3, 5], scale: [0.02], zeroPoint: [100], zeroPointType: DataType.UINT8, range: [0, 255] });
    expect(clipped).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-6);
  });

  it('should pass the gradient straight through a per-channel int8 fake quantization', async () => {
    const { worst, clipped } = await checkFakeQuant({
      dims: [2, 3, 4],
      scale: [0.01, 0.03, 0.05],
      zeroPoint: [0, -10, 5],
      zeroPointType: DataType.INT8,
      range: [-128, 127],
    });
    expect(clipped).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-6);
  });
});
