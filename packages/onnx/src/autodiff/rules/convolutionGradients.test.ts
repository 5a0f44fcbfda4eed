import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../../attributes.js';
import { loadFixture } from '../../test-support/testModels.js';
import { buildTrainingStep } from '../buildTrainingStep.js';
import type { GradientRuleTable } from '../GradientRule.js';
import { checkGradients, type GradientCheckInput } from '../test-support/checkGradients.js';
import { convolutionGradientRules } from './convolutionGradients.js';

async function checkNode(
  op: string,
  inputs: GradientCheckInput[],
  attributes: Record<string, AttributeValue>,
  rules?: GradientRuleTable,
): Promise<number> {
  const result = await checkGradients({
    nodes: [{ op, inputs: inputs.map((i) => i.name), outputs: ['y'], attributes }],
    inputs,
    outputs: ['y'],
    ...(rules === undefined ? {} : { rules }),
  });
  return result.maxRelativeError;
}

describe('convolutionGradients', () => {
  it('should give the gradients of a padded Conv with bias', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 3, 5, 5] },
        { name: 'w', dims: [4, 3, 3, 3] },
        { name: 'b', dims: [4] },
      ],
      { pads: [1, 1, 1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a strided, dilated Conv with asymmetric pads and unread trailing rows', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 2, 8, 7] },
        { name: 'w', dims: [3, 2, 3, 2] },
      ],
      { strides: [2, 3], dilations: [1, 2], pads: [1, 0, 0, 2] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a grouped Conv', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 4, 5, 5] },
        { name: 'w', dims: [6, 2, 3, 3] },
        { name: 'b', dims: [6] },
      ],
      { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a depthwise Conv (flipped-kernel input gradient, unfolded weight gradient)', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [3, 3, 6, 6] },
        { name: 'w', dims: [3, 1, 3, 3] },
        { name: 'b', dims: [3] },
      ],
      { group: 3, pads: [1, 1, 1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a dilated depthwise Conv with asymmetric pads', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 2, 7, 7] },
        { name: 'w', dims: [2, 1, 3, 3] },
      ],
      { group: 2, dilations: [2, 2], pads: [2, 1, 0, 2] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a strided depthwise Conv with a depth multiplier', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 3, 7, 7] },
        { name: 'w', dims: [6, 1, 3, 3] },
      ],
      { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a depthwise Conv with a kernel too large to unfold', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 2, 7, 7] },
        { name: 'w', dims: [2, 1, 5, 5] },
      ],
      { group: 2, pads: [2, 2, 2, 2] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a Conv with auto_pad SAME_UPPER and SAME_LOWER', async () => {
    for (const autoPad of ['SAME_UPPER', 'SAME_LOWER']) {
      const error = await checkNode(
        'Conv',
        [
          { name: 'x', dims: [2, 2, 6, 5] },
          { name: 'w', dims: [3, 2, 2, 3] },
        ],
        { auto_pad: autoPad, strides: [2, 2] },
      );
      expect(error, autoPad).toBeLessThan(1e-3);
    }
  });

  it('should give the gradients of a 1-D Conv', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 3, 9] },
        { name: 'w', dims: [2, 3, 3] },
        { name: 'b', dims: [2] },
      ],
      { strides: [2], pads: [1, 0] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  // The next cases have 1x1 kernels or at least 16 output positions, so the weight gradient takes
  // the tap-wise MatMul formulation; the smaller cases above take the grouped-Conv one.
  it('should give the gradients of a grouped, strided, dilated Conv with asymmetric pads (tap-wise weight gradient)', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 4, 11, 10] },
        { name: 'w', dims: [6, 2, 3, 2] },
        { name: 'b', dims: [6] },
      ],
      { group: 2, strides: [2, 1], dilations: [1, 2], pads: [1, 0, 0, 2] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a strided 1x1 Conv (tap-wise weight gradient)', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 3, 7, 7] },
        { name: 'w', dims: [4, 3, 1, 1] },
      ],
      { strides: [2, 2] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a padded 1-D Conv (tap-wise weight gradient)', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [2, 3, 20] },
        { name: 'w', dims: [2, 3, 3] },
        { name: 'b', dims: [2] },
      ],
      { pads: [1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a 3-D Conv (tap-wise weight gradient)', async () => {
    const error = await checkNode(
      'Conv',
      [
        { name: 'x', dims: [1, 2, 4, 4, 4] },
        { name: 'w', dims: [3, 2, 2, 2, 2] },
      ],
      {},
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a grouped, strided ConvTranspose (tap-wise weight gradient)', async () => {
    const error = await checkNode(
      'ConvTranspose',
      [
        { name: 'x', dims: [2, 4, 5, 5] },
        { name: 'w', dims: [4, 3, 3, 3] },
      ],
      { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a strided ConvTranspose with output_padding and bias', async () => {
    const error = await checkNode(
      'ConvTranspose',
      [
        { name: 'x', dims: [2, 4, 3, 3] },
        { name: 'w', dims: [4, 3, 3, 3] },
        { name: 'b', dims: [3] },
      ],
      { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a strided depthwise ConvTranspose (unfolded weight gradient)', async () => {
    const error = await checkNode(
      'ConvTranspose',
      [
        { name: 'x', dims: [2, 3, 3, 4] },
        { name: 'w', dims: [3, 1, 3, 3] },
        { name: 'b', dims: [3] },
      ],
      { group: 3, strides: [2, 2], pads: [1, 0, 1, 1], output_padding: [1, 0] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  it('should give the gradients of a grouped, dilated ConvTranspose', async () => {
    const error = await checkNode(
      'ConvTranspose',
      [
        { name: 'x', dims: [2, 4, 4, 3] },
        { name: 'w', dims: [4, 2, 2, 3] },
      ],
      { group: 2, dilations: [2, 1], strides: [1, 2], pads: [0, 1, 1, 0] },
    );
    expect(error).toBeLessThan(1e-3);
  });

  describe('with the flipped-kernel Conv input gradient', () => {
    const flipped = convolutionGradientRules('flippedConv');

    it('should give the gradients of a padded Conv with bias', async () => {
      const error = await checkNode(
        'Conv',
        [
          { name: 'x', dims: [2, 3, 5, 5] },
          { name: 'w', dims: [4, 3, 3, 3] },
          { name: 'b', dims: [4] },
        ],
        { pads: [1, 1, 1, 1] },
        flipped,
      );
      expect(error).toBeLessThan(1e-3);
    });

    it('should give the gradients of a grouped, dilated Conv with asymmetric pads', async () => {
      const error = await checkNode(
        'Conv',
        [
          { name: 'x', dims: [2, 4, 9, 8] },
          { name: 'w', dims: [6, 2, 3, 2] },
        ],
        { group: 2, dilations: [2, 3], pads: [3, 0, 1, 2] },
        flipped,
      );
      expect(error).toBeLessThan(1e-3);
    });

    it('should give the gradients of a single-output-channel Conv and of a depth-multiplier depthwise Conv', async () => {
      const cases: [GradientCheckInput[], Record<string, AttributeValue>][] = [
        [
          [
            { name: 'x', dims: [2, 3, 6, 6] },
            { name: 'w', dims: [1, 3, 3, 3] },
          ],
          { pads: [0, 1, 2, 1] },
        ],
        [
          [
            { name: 'x', dims: [2, 2, 6, 6] },
            { name: 'w', dims: [4, 1, 3, 3] },
          ],
          { group: 2, pads: [1, 1, 1, 1] },
        ],
      ];
      for (const [inputs, attributes] of cases) {
        expect(await checkNode('Conv', inputs, attributes, flipped), JSON.stringify(attributes)).toBeLessThan(1e-3);
      }
    });

    it('should fall back to the transposed convolution for pads beyond the kernel reach', async () => {
      const error = await checkNode(
        'Conv',
        [
          { name: 'x', dims: [2, 3, 4, 4] },
          { name: 'w', dims: [2, 3, 1, 1] },
        ],
        { pads: [1, 1, 1, 1] },
        flipped,
      );
      expect(error).toBeLessThan(1e-3);
    });

    it('should replace the ConvTranspose of every stride-1 Conv input gradient of LeNet-5', () => {
      const countOps = (choice: 'transposedConv' | 'flippedConv'): Record<string, number> => {
        const step = buildTrainingStep(loadFixture('lenet5-fmnist'), {
          loss: [{ kind: 'crossEntropy' }],
          optimizer: { kind: 'sgd' },
          convolutionInputGradient: choice,
        });
        const counts: Record<string, number> = {};
        for (const node of step.model.graph.proto.node) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
        return counts;
      };
      const transposed = countOps('transposedConv');
      const flippedOps = countOps('flippedConv');
      // conv2 (6 -> 16 channels, 5x5, stride 1) is the one Conv whose input needs a gradient.
      expect((transposed.ConvTranspose ?? 0) - (flippedOps.ConvTranspose ?? 0)).toBe(1);
      expect((flippedOps.Conv ?? 0) - (transposed.Conv ?? 0)).toBe(1);
    });
  });
});
