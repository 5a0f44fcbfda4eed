import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../attributes.js';
import { DataType } from '../../proto.js';
import type { NodeSpec } from '../../test-support/testModels.js';
import { checkGradients, type GradientCheckInput } from '../test-support/checkGradients.js';

const ints = (values: number[]): GradientCheckInput['data'] => BigInt64Array.from(values, (v) => BigInt(v));

async function check(nodes: NodeSpec[], inputs: GradientCheckInput[], outputs = ['y']): Promise<number> {
  return (await checkGradients({ nodes, inputs, outputs })).maxRelativeError;
}

function node(op: string, inputs: string[], attributes?: Record<string, AttributeValue>, outputs = ['y']): NodeSpec {
  return { op, inputs, outputs, ...(attributes === undefined ? {} : { attributes }) };
}

describe('shapeGradients', () => {
  it('should give the gradients of Flatten, Reshape, Squeeze and Unsqueeze', async () => {
    expect(await check([node('Flatten', ['x'], { axis: 2 })], [{ name: 'x', dims: [2, 3, 2, 2] }])).toBeLessThan(1e-3);
    const shape = { name: 'shape', dims: [3], dataType: DataType.INT64, data: ints([3, -1, 2]) };
    expect(await check([node('Reshape', ['x', 'shape'])], [{ name: 'x', dims: [2, 3, 2] }, shape])).toBeLessThan(1e-3);
    const axes = { name: 'axes', dims: [2], dataType: DataType.INT64, data: ints([1, -1]) };
    expect(await check([node('Squeeze', ['x', 'axes'])], [{ name: 'x', dims: [3, 1, 2, 1] }, axes])).toBeLessThan(1e-3);
    expect(await check([node('Unsqueeze', ['x', 'axes'])], [{ name: 'x', dims: [3, 2] }, axes])).toBeLessThan(1e-3);
  });

  it('should give the gradient of Transpose with and without perm', async () => {
    expect(await check([node('Transpose', ['x'], { perm: [2, 0, 3, 1] })], [{ name: 'x', dims: [2, 3, 4, 2] }])).toBeLessThan(1e-3);
    expect(await check([node('Transpose', ['x'])], [{ name: 'x', dims: [2, 3, 4] }])).toBeLessThan(1e-3);
  });

  it('should give the gradients of Concat along a middle and a negative axis', async () => {
    const inputs = [
      { name: 'a', dims: [2, 1, 3] },
      { name: 'b', dims: [2, 3, 3] },
      { name: 'c', dims: [2, 2, 3] },
    ];
    expect(await check([node('Concat', ['a', 'b', 'c'], { axis: 1 })], inputs)).toBeLessThan(1e-3);
    expect(await check([node('Concat', ['a', 'a', 'b'], { axis: -2 })], inputs.slice(0, 2))).toBeLessThan(1e-3);
  });

  it('should give the gradient of Split with sizes, with an output the loss does not read', async () => {
    const split = { name: 'split', dims: [3], dataType: DataType.INT64, data: ints([1, 3, 2]) };
    const nodes = [node('Split', ['x', 'split'], { axis: 1 }, ['p', 'q', 'r'])];
    expect(await check(nodes, [{ name: 'x', dims: [2, 6, 2] }, split], ['p', 'r'])).toBeLessThan(1e-3);
    const even = [node('Split', ['x'], { axis: -1, num_outputs: 2 }, ['p', 'q'])];
    expect((await checkGradients({ nodes: even, inputs: [{ name: 'x', dims: [3, 4] }], outputs: ['p', 'q'], opset: 18 })).maxRelativeError).toBeLessThan(1e-3);
  });

  it('should give the gradient of Cast between float types', async () => {
    const nodes = [node('Cast', ['x'], { to: DataType.DOUBLE }, ['d']), node('Cast', ['d'], { to: DataType.FLOAT })];
    expect(await check(nodes, [{ name: 'x', dims: [3, 4] }])).toBeLessThan(1e-3);
  });
});
