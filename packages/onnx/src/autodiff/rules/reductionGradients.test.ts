import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../attributes.js';
import { DataType } from '../../proto.js';
import { checkGradients, type GradientCheckInput } from '../test-support/checkGradients.js';

async function checkReduce(op: string, dims: number[], attributes: Record<string, AttributeValue>, axes?: number[], opset = 17): Promise<number> {
  const inputs: GradientCheckInput[] = [{ name: 'x', dims }];
  if (axes !== undefined) inputs.push({ name: 'axes', dims: [axes.length], dataType: DataType.INT64, data: BigInt64Array.from(axes, BigInt) });
  const result = await checkGradients({
    nodes: [{ op, inputs: inputs.map((i) => i.name), outputs: ['y'], attributes }],
    inputs,
    outputs: ['y'],
    opset,
  });
  return result.maxRelativeError;
}

describe('reductionGradients', () => {
  it('should give the gradient of ReduceSum with axes as input, keepdims both ways', async () => {
    expect(await checkReduce('ReduceSum', [2, 3, 4], { keepdims: 1 }, [0, 2])).toBeLessThan(1e-3);
    expect(await checkReduce('ReduceSum', [2, 3, 4], { keepdims: 0 }, [-1, 1])).toBeLessThan(1e-3);
    expect(await checkReduce('ReduceSum', [2, 3, 4], { keepdims: 0 })).toBeLessThan(1e-3);
  });

  it('should give the gradient of ReduceMean with axes as attribute (opset 17) and as input (opset 18)', async () => {
    expect(await checkReduce('ReduceMean', [2, 3, 4], { axes: [1], keepdims: 0 })).toBeLessThan(1e-3);
    expect(await checkReduce('ReduceMean', [2, 3, 4], { axes: [0, -1], keepdims: 1 })).toBeLessThan(1e-3);
    expect(await checkReduce('ReduceMean', [2, 3, 4], { keepdims: 0 }, [2, 0], 18)).toBeLessThan(1e-3);
    expect(await checkReduce('ReduceMean', [2, 3, 4], { keepdims: 1 })).toBeLessThan(1e-3);
  });
});
