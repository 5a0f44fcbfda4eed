import { describe, expect, it } from 'vitest';
import { DataType } from '../../proto.js';
import { randomArray } from '../../test-support/testModels.js';
import { checkGradients, type GradientCheckCase, type GradientCheckInput } from '../test-support/checkGradients.js';

const TOLERANCE = 1e-3;

/** Pseudo-random values in [low, high). */
function uniform(count: number, low: number, high: number, seed: number): Float32Array {
  return randomArray(count, seed).map((v) => low + ((v + 1) / 2) * (high - low));
}

/** Pseudo-random values in [-scale, scale) kept at least `margin` away from each of `kinks`. */
function awayFrom(count: number, kinks: readonly number[], seed: number, scale = 1, margin = 0.05): Float32Array {
  return randomArray(count, seed).map((v) => {
    let x = v * scale;
    for (const kink of kinks) if (Math.abs(x - kink) < margin) x = kink + (x >= kink ? margin : -margin) * 2;
    return x;
  });
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** A case of one node `op(inputs) -> y`. */
function oneNode(op: string, inputs: GradientCheckInput[], attributes: GradientCheckCase['nodes'][number]['attributes'] = {}, opset = 17): GradientCheckCase {
  return { nodes: [{ op, inputs: inputs.map((i) => i.name), outputs: ['y'], attributes }], inputs, outputs: ['y'], opset };
}

async function expectGradients(testCase: GradientCheckCase): Promise<void> {
  const result = await checkGradients(testCase);
  for (const [name, check] of Object.entries(result.inputs)) {
    expect(check.relativeError, `input ${name} (${result.precision} forward)`).toBeLessThan(TOLERANCE);
  }
  expect(Object.keys(result.inputs).length).toBeGreaterThan(0);
}

describe('elementwiseGradients', () => {
  it('should give the gradients of Add, Sub and Mul with numpy broadcasting', async () => {
    const shapes: [number[], number[]][] = [
      [[2, 3, 4], [3, 1]],
      [[2, 3], [2, 3]],
      [[], [2, 3]],
      [[4, 1], [1, 5]],
      [[2, 1, 4], [3, 4]],
    ];
    for (const op of ['Add', 'Sub', 'Mul']) {
      for (const [a, b] of shapes) await expectGradients(oneNode(op, [{ name: 'a', dims: a }, { name: 'b', dims: b }]));
    }
  });

  it('should give the gradients of Div with a broadcast divisor', async () => {
    for (const [a, b] of [[[2, 3], [3]], [[3, 1], [1, 4]], [[2, 2], []]] as [number[], number[]][]) {
      await expectGradients(oneNode('Div', [{ name: 'a', dims: a }, { name: 'b', dims: b, data: uniform(size(b), 0.5, 2, 5) }]));
    }
  });

  it('should give the gradients of Pow for the base and the exponent', async () => {
    await expectGradients(
      oneNode('Pow', [
        { name: 'x', dims: [2, 3], data: uniform(6, 0.5, 2, 3) },
        { name: 'e', dims: [3], data: Float32Array.of(2, 0.5, -1.5) },
      ]),
    );
    await expectGradients(
      oneNode('Pow', [
        { name: 'x', dims: [4], data: Float32Array.of(-1.5, -0.3, 0.4, 1.2) },
        { name: 'e', dims: [], data: BigInt64Array.of(3n), dataType: DataType.INT64 },
      ]),
    );
  });

  it('should give the gradients of the unary ops', async () => {
    const positive = (dims: number[]): GradientCheckInput => ({ name: 'x', dims, data: uniform(size(dims), 0.3, 2, 11) });
    const anywhere = (dims: number[]): GradientCheckInput => ({ name: 'x', dims, data: awayFrom(size(dims), [0], 13, 2) });
    for (const dims of [[7], [2, 3, 4]]) {
      await expectGradients(oneNode('Sqrt', [positive(dims)]));
      await expectGradients(oneNode('Log', [positive(dims)]));
      for (const op of ['Relu', 'Sigmoid', 'Tanh', 'Erf', 'Identity', 'Neg', 'Exp']) await expectGradients(oneNode(op, [anywhere(dims)]));
    }
  });

  it('should give the gradients of LeakyRelu and HardSigmoid with their attributes', async () => {
    await expectGradients(oneNode('LeakyRelu', [{ name: 'x', dims: [3, 4], data: awayFrom(12, [0], 3) }]));
    await expectGradients(oneNode('LeakyRelu', [{ name: 'x', dims: [3, 4], data: awayFrom(12, [0], 4) }], { alpha: 0.3 }));
    // Flat below -0.4/0.3 and above 0.6/0.3: inputs on both flat parts and the slope.
    const kinks = [-0.4 / 0.3, 0.6 / 0.3];
    await expectGradients(
      oneNode('HardSigmoid', [{ name: 'x', dims: [4, 5], data: awayFrom(20, kinks, 6, 3, 0.1) }], { alpha: 0.3, beta: 0.4 }),
    );
    await expectGradients(oneNode('HardSigmoid', [{ name: 'x', dims: [10], data: awayFrom(10, [-2.5, 2.5], 8, 4, 0.1) }]));
  });

  it('should give the gradient of Clip with both bounds, one bound and none', async () => {
    const x = (seed: number): GradientCheckInput => ({ name: 'x', dims: [4, 5], data: awayFrom(20, [-0.5, 0.5], seed) });
    const low: GradientCheckInput = { name: 'low', dims: [], data: Float32Array.of(-0.5), differentiable: false };
    const high: GradientCheckInput = { name: 'high', dims: [], data: Float32Array.of(0.5), differentiable: false };
    await expectGradients(oneNode('Clip', [x(1), low, high]));
    await expectGradients({ nodes: [{ op: 'Clip', inputs: ['x', 'low'], outputs: ['y'] }], inputs: [x(2), low], outputs: ['y'] });
    await expectGradients({ nodes: [{ op: 'Clip', inputs: ['x', '', 'high'], outputs: ['y'] }], inputs: [x(3), high], outputs: ['y'] });
    await expectGradients({ nodes: [{ op: 'Clip', inputs: ['x'], outputs: ['y'] }], inputs: [x(4)], outputs: ['y'] });
  });

  it('should give the gradient of Gelu, exact and tanh-approximated (opset 20)', async () => {
    const x: GradientCheckInput = { name: 'x', dims: [3, 5], data: uniform(15, -3, 3, 21) };
    await expectGradients(oneNode('Gelu', [x], {}, 20));
    await expectGradients(oneNode('Gelu', [x], { approximate: 'tanh' }, 20));
  });

  it('should sum the gradients of a tensor read by several nodes', async () => {
    await expectGradients({
      nodes: [
        { op: 'Tanh', inputs: ['x'], outputs: ['t'] },
        { op: 'Mul', inputs: ['x', 'x'], outputs: ['s'] },
        { op: 'Mul', inputs: ['t', 'w'], outputs: ['u'] },
        { op: 'Add', inputs: ['u', 's'], outputs: ['y'] },
      ],
      inputs: [
        { name: 'x', dims: [2, 3] },
        { name: 'w', dims: [3] },
      ],
      outputs: ['y', 't'],
    });
  });
});
