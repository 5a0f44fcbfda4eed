import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OnnxModel, tensorDims, tensorToArray } from '@open-autoglm/onnx';
import { reinitializeParameters } from './reinitializeParameters.js';

const fixtures = fileURLToPath(new URL('../../../../fixtures/', import.meta.url));

function values(model: OnnxModel, name: string): Float32Array {
  const tensor = model.graph.getInitializer(name);
  if (tensor === undefined) throw new Error(`no initializer ${name}`);
  return tensorToArray(tensor) as Float32Array;
}

describe('reinitializeParameters', () => {
  it("should follow PyTorch's default initialization on LeNet-5", async () => {
    const model = await OnnxModel.load(path.join(fixtures, 'lenet5-fmnist.onnx'));
    const report = reinitializeParameters(model, 1234);
    const byName = new Map(report.map((r) => [r.name, r]));
    for (const node of model.graph.nodes) {
      if (node.opType === 'Conv' || node.opType === 'Gemm') {
        const weight = model.graph.getInitializer(node.input[1] ?? '');
        const dims = tensorDims(weight!);
        // Conv [out, in, kh, kw]: fan_in = in*kh*kw; Gemm transB=1 [out, in]: fan_in = in.
        const fanIn = dims.slice(1).reduce((a, b) => a * b, 1);
        const bound = 1 / Math.sqrt(fanIn);
        for (const name of node.input.slice(1, 3)) {
          expect(byName.get(name)).toMatchObject({ rule: 'uniform' });
          expect(byName.get(name)?.bound).toBeCloseTo(bound, 12);
          const v = values(model, name);
          expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
        }
        // A large weight tensor spans its range and has the variance of U(-b, b): b^2 / 3.
        const w = values(model, node.input[1]!);
        if (w.length >= 2000) {
          const mean = w.reduce((a, b) => a + b, 0) / w.length;
          const variance = w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length;
          expect(Math.abs(mean)).toBeLessThan(0.05 * bound);
          expect(variance / (bound * bound / 3)).toBeGreaterThan(0.9);
          expect(variance / (bound * bound / 3)).toBeLessThan(1.1);
          expect(Math.max(...w)).toBeGreaterThan(0.99 * bound);
        }
      }
      if (node.opType === 'BatchNormalization') {
        const [scale, bias, mean, variance] = node.input.slice(1).map((n) => values(model, n));
        expect([...scale!].every((x) => x === 1)).toBe(true);
        expect([...bias!].every((x) => x === 0)).toBe(true);
        expect([...mean!].every((x) => x === 0)).toBe(true);
        expect([...variance!].every((x) => x === 1)).toBe(true);
      }
    }
    expect(model.problems()).toEqual([]);
  });

  it('should give the same parameters for the same seed and different ones for another seed', async () => {
    const file = path.join(fixtures, 'lenet5-fmnist.onnx');
    const [a, b, c] = await Promise.all([file, file, file].map((f) => OnnxModel.load(f)));
    reinitializeParameters(a!, 1);
    reinitializeParameters(b!, 1);
    reinitializeParameters(c!, 2);
    const name = a!.graph.nodes.find((n) => n.opType === 'Conv')!.input[1]!;
    expect(values(a!, name)).toEqual(values(b!, name));
    expect(values(a!, name)).not.toEqual(values(c!, name));
  });

  it('should initialize MatMul weights with their Add biases, LayerNorm and embeddings of a transformer', async () => {
    const model = await OnnxModel.load(path.join(fixtures, 'tinybert-spam.onnx'));
    const report = reinitializeParameters(model, 0);
    const rules = new Map(report.map((r) => [r.name, r]));
    const embedding = model.graph.nodes.find((n) => n.opType === 'Gather' && model.graph.getInitializer(n.input[0]!) !== undefined);
    const table = values(model, embedding!.input[0]!);
    const mean = table.reduce((a, b) => a + b, 0) / table.length;
    const variance = table.reduce((a, b) => a + (b - mean) ** 2, 0) / table.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    const matMul = model.graph.nodes.find((n) => n.opType === 'MatMul' && model.graph.getInitializer(n.input[1]!) !== undefined)!;
    const fanIn = tensorDims(model.graph.getInitializer(matMul.input[1]!)!)[0]!;
    expect(rules.get(matMul.input[1]!)?.bound).toBeCloseTo(1 / Math.sqrt(fanIn), 12);
    const add = model.graph.consumersOf(matMul.output[0]!)[0]!;
    const bias = add.input.find((n) => n !== matMul.output[0])!;
    expect(rules.get(bias)).toMatchObject({ rule: 'uniform' });
    const layerNorm = model.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect([...values(model, layerNorm.input[1]!)].every((x) => x === 1)).toBe(true);
    expect([...values(model, layerNorm.input[2]!)].every((x) => x === 0)).toBe(true);
  });
});
