import { describe, expect, it } from 'vitest';
import { checkGradients, type GradientCheckCase } from '../test-support/checkGradients.js';

const TOLERANCE = 1e-3;

async function expectGradients(testCase: GradientCheckCase): Promise<void> {
  const result = await checkGradients(testCase);
  for (const [name, check] of Object.entries(result.inputs)) {
    expect(check.relativeError, `input ${name} (${result.precision} forward)`).toBeLessThan(TOLERANCE);
  }
  expect(Object.keys(result.inputs).length).toBe(testCase.inputs.length);
}

describe('linearAlgebraGradients', () => {
  it('should give the gradients of Gemm for every transA/transB with alpha, beta and a broadcast C', async () => {
    const [m, k, n] = [3, 4, 5];
    const biasShapes = [[n], [1, n], [m, 1], [m, n], []];
    let variant = 0;
    for (const transA of [0, 1]) {
      for (const transB of [0, 1]) {
        const bias = biasShapes[variant++ % biasShapes.length] as number[];
        await expectGradients({
          nodes: [
            {
              op: 'Gemm',
              inputs: ['a', 'b', 'c'],
              outputs: ['y'],
              attributes: { transA, transB, alpha: 0.7, beta: 1.3 },
              floatAttributes: ['alpha', 'beta'],
            },
          ],
          inputs: [
            { name: 'a', dims: transA ? [k, m] : [m, k] },
            { name: 'b', dims: transB ? [n, k] : [k, n] },
            { name: 'c', dims: bias },
          ],
          outputs: ['y'],
        });
      }
    }
  });

  it('should give the gradients of Gemm without C and with default attributes', async () => {
    await expectGradients({
      nodes: [{ op: 'Gemm', inputs: ['a', 'b'], outputs: ['y'], attributes: { transB: 1 } }],
      inputs: [
        { name: 'a', dims: [2, 6] },
        { name: 'b', dims: [3, 6] },
      ],
      outputs: ['y'],
    });
  });

  it('should give the gradients of MatMul for 2-D, batched and broadcast operands', async () => {
    const shapes: [number[], number[]][] = [
      [[3, 4], [4, 5]],
      [[2, 3, 4], [2, 4, 5]],
      [[2, 3, 4], [4, 5]],
      [[3, 4], [2, 4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]],
    ];
    for (const [a, b] of shapes) {
      await expectGradients({
        nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
        inputs: [
          { name: 'a', dims: a },
          { name: 'b', dims: b },
        ],
        outputs: ['y'],
      });
    }
  });

  it('should give the gradients of MatMul with 1-D operands', async () => {
    const shapes: [number[], number[]][] = [
      [[4], [4]],
      [[4], [4, 3]],
      [[4], [2, 4, 3]],
      [[3, 4], [4]],
      [[2, 3, 4], [4]],
    ];
    for (const [a, b] of shapes) {
      await expectGradients({
        nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
        inputs: [
          { name: 'a', dims: a },
          { name: 'b', dims: b },
        ],
        outputs: ['y'],
      });
    }
  });
});
