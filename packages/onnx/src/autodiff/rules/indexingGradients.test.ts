import { describe, expect, it } from 'vitest';
import { DataType } from '../../proto.js';
import { checkGradients, type GradientCheckInput } from '../test-support/checkGradients.js';

const ints = (name: string, values: number[], dims = [values.length]): GradientCheckInput => ({
  name,
  dims,
  dataType: DataType.INT64,
  data: BigInt64Array.from(values, (v) => BigInt(v)),
});

async function checkSlice(dims: number[], starts: number[], ends: number[], axes?: number[], steps?: number[]): Promise<number> {
  const inputs: GradientCheckInput[] = [{ name: 'x', dims }, ints('starts', starts), ints('ends', ends)];
  if (axes !== undefined) inputs.push(ints('axes', axes));
  if (steps !== undefined) inputs.push(ints('steps', steps));
  const result = await checkGradients({
    nodes: [{ op: 'Slice', inputs: inputs.map((i) => i.name), outputs: ['y'] }],
    inputs,
    outputs: ['y'],
  });
  return result.maxRelativeError;
}

async function checkGather(dims: number[], indices: number[], indexDims: number[], axis: number): Promise<number> {
  const result = await checkGradients({
    nodes: [{ op: 'Gather', inputs: ['x', 'i'], outputs: ['y'], attributes: { axis } }],
    inputs: [{ name: 'x', dims }, ints('i', indices, indexDims)],
    outputs: ['y'],
  });
  return result.maxRelativeError;
}

describe('indexingGradients', () => {
  it('should give the gradient of Slice with unit steps on some axes', async () => {
    expect(await checkSlice([4, 5, 3], [1, 0], [3, 4], [0, 1])).toBeLessThan(1e-3);
    expect(await checkSlice([4, 5], [1, 1], [1000, -1])).toBeLessThan(1e-3);
  });

  it('should give the gradient of Slice with steps, negative steps and negative indices', async () => {
    expect(await checkSlice([6, 7], [0, 1], [6, 7], [0, 1], [2, 3])).toBeLessThan(1e-3);
    expect(await checkSlice([6, 7], [-1, -2], [-7, 0], [0, -1], [-2, -1])).toBeLessThan(1e-3);
  });

  it('should give the gradient of Gather along axis 0 with repeated and negative indices (an embedding)', async () => {
    expect(await checkGather([5, 3], [0, 2, 2, -1, 0, 4], [2, 3], 0)).toBeLessThan(1e-3);
  });

  it('should give the gradient of Gather along inner axes, with a scalar index', async () => {
    expect(await checkGather([2, 4, 3], [3, 1, 3], [3], 1)).toBeLessThan(1e-3);
    expect(await checkGather([2, 3, 4], [1, 0, 1, -4], [2, 2], -1)).toBeLessThan(1e-3);
    expect(await checkGather([3, 4, 2], [2], [], 1)).toBeLessThan(1e-3);
  });
});
