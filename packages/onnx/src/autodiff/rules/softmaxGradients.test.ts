import { describe, expect, it } from 'vitest';
import { checkGradients } from '../test-support/checkGradients.js';

async function checkAxis(op: string, dims: number[], axis?: number): Promise<number> {
  const result = await checkGradients({
    nodes: [{ op, inputs: ['x'], outputs: ['y'], ...(axis === undefined ? {} : { attributes: { axis } }) }],
    inputs: [{ name: 'x', dims }],
    outputs: ['y'],
  });
  return result.maxRelativeError;
}

describe('softmaxGradients', () => {
  it('should give the gradient of Softmax along the default, first, middle and negative axes', async () => {
    expect(await checkAxis('Softmax', [3, 5])).toBeLessThan(1e-3);
    expect(await checkAxis('Softmax', [4, 2, 3], 0)).toBeLessThan(1e-3);
    expect(await checkAxis('Softmax', [2, 4, 3], 1)).toBeLessThan(1e-3);
    expect(await checkAxis('Softmax', [2, 3, 4], -2)).toBeLessThan(1e-3);
  });

  it('should give the gradient of LogSoftmax along the default, first and middle axes', async () => {
    expect(await checkAxis('LogSoftmax', [3, 5])).toBeLessThan(1e-3);
    expect(await checkAxis('LogSoftmax', [4, 2, 3], 0)).toBeLessThan(1e-3);
    expect(await checkAxis('LogSoftmax', [2, 4, 3], 1)).toBeLessThan(1e-3);
  });
});
