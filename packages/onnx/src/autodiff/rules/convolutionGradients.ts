import { UnsupportedOperationError } from '@open-autoglm/core';
import { findAttribute, getIntAttribute } from '../../attributes.js';
import { describeNode } from '../../OnnxGraph.js';
import type { GradientContext, GradientRuleTable } from '../GradientRule.js';
import type { ConvolutionInputGradient } from '../TrainingStepSpec.js';
import { resolveWindowGeometry, scatterThroughWindows, staticDimsOf, type WindowGeometry } from './windowGeometry.js';

/** The window layout of a convolution, as the gradient formulas need it. */
type ConvolutionLayout = WindowGeometry & {
  readonly group: number;
  /** [output channels, input channels per group, ...kernel]. */
  readonly weightDims: readonly number[];
};

/**
 * Kernels up to this many taps use the unfold formulation of the depthwise weight gradient;
 * larger ones would make the unfolded input too big (it is `taps` times the input).
 */
const MAX_UNFOLD_TAPS = 16;

/**
 * The tap-wise weight gradient (one MatMul per kernel tap) is used for kernels up to this many
 * taps producing at least MIN_TAPWISE_POSITIONS output positions, and for every 1x1 kernel; the
 * grouped-Conv formulation measured faster for LeNet's 5x5 kernels and VGG's 2x2 feature maps.
 */
const MAX_TAPWISE_TAPS = 9;
const MIN_TAPWISE_POSITIONS = 16;

function outputPositions(layout: ConvolutionLayout): number {
  return layout.outputSpatial.reduce((a, b) => a * b, 1);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** `perm` applied to a rank-`rank` tensor whose leading axes `lead` are permuted and the rest kept. */
function leadingPermutation(lead: readonly number[], rank: number): number[] {
  return [...lead, ...range(lead.length, rank)];
}

/** The formulation used when the spec does not choose one (see `TrainingStepSpec.convolutionInputGradient`). */
export const DEFAULT_CONVOLUTION_INPUT_GRADIENT: ConvolutionInputGradient = 'transposedConv';

/**
 * The kernel of the stride-1 convolution that computes dL/dX of Y = Conv(X, W): W with its two
 * channel axes exchanged within each group, [C_in, C_out / group, ...k], flipped along every
 * spatial axis. When either channel axis of a group has size 1 the exchange is only a Reshape.
 */
function flippedKernel(c: GradientContext, layout: ConvolutionLayout, weight: string): string {
  const rank = layout.kernel.length;
  const [outputChannels, channelsPerGroup] = layout.weightDims as [number, number];
  const group = layout.group;
  const groupOutputs = outputChannels / group;
  const exchangedDims = [group * channelsPerGroup, groupOutputs, ...layout.kernel];
  let exchanged: string;
  if (groupOutputs === 1 && channelsPerGroup === 1) {
    exchanged = weight;
  } else if (groupOutputs === 1 || channelsPerGroup === 1) {
    exchanged = c.op('Reshape', [weight, c.ints(exchangedDims)]);
  } else if (group === 1) {
    exchanged = c.op('Transpose', [weight], { perm: leadingPermutation([1, 0], rank + 2) });
  } else {
    const split = c.op('Reshape', [weight, c.ints([group, groupOutputs, channelsPerGroup, ...layout.kernel])]);
    const swapped = c.op('Transpose', [split], { perm: leadingPermutation([0, 2, 1], rank + 3) });
    exchanged = c.op('Reshape', [swapped, c.ints(exchangedDims)]);
  }
  return c.op('Slice', [
    exchanged,
    c.ints(new Array<number>(rank).fill(-1)),
    c.ints(new Array<number>(rank).fill(Number.MIN_SAFE_INTEGER)),
    c.ints(range(2, 2 + rank)),
    c.ints(new Array<number>(rank).fill(-1)),
  ]);
}

/**
 * dL/dX of Y = Conv(X, W): the transposed convolution of dY with W, or for stride 1 (when chosen,
 * and always for depthwise kernels) the equivalent convolution of dY with the flipped kernel
 * (`flippedKernel`), pads reach - pad. onnxruntime runs the flipped depthwise Conv about 2.7x
 * faster than ConvTranspose (measured: 16 vs 44 ms for 32 channels 3x3, 56x56, batch 64).
 *
 * For ordinary convolutions the flipped Conv is no faster, so ConvTranspose stays the default:
 * the kernel is a graph input (a trained parameter), so onnxruntime's NCHWc transformer, which
 * needs a constant weight, leaves this Conv (like the forward ones) on the generic MLAS path,
 * which like ConvTranspose computes image by image. Whole step, batch 64, A/B interleaved, two
 * rounds at load average 1.3-2.9 on 2 cores, median step ms, transposed vs flipped: vgg11bn
 * 74-80 vs 101-106 (1 thread), 98-142 vs 87-98 (2 threads); resnet8 76-79 vs 76-99, 88-111 vs
 * 92-100; LeNet-5 6.6-12.2 vs 9.9-13.9, 9.5-13.2 vs 8.5-11.3. Slower at 1 thread, at best a
 * noisy gain at 2 (bench/results/train-conv-input-gradient.json, also at load 9-16).
 */
function convolutionInputGradient(c: GradientContext, layout: ConvolutionLayout, dY: string, weight: string, choice: ConvolutionInputGradient): string {
  const [outputChannels, channelsPerGroup] = layout.weightDims as [number, number];
  const depthwise = channelsPerGroup === 1 && outputChannels === layout.group && layout.group > 1;
  const reach = layout.kernel.map((k, i) => (k - 1) * (layout.dilations[i] as number));
  const flippable =
    (depthwise || choice === 'flippedConv') &&
    layout.strides.every((s) => s === 1) &&
    reach.every((r, i) => r >= (layout.padsBegin[i] as number) && r >= (layout.padsEnd[i] as number));
  if (flippable) {
    return c.op('Conv', [dY, flippedKernel(c, layout, weight)], {
      group: layout.group,
      dilations: [...layout.dilations],
      pads: [...reach.map((r, i) => r - (layout.padsBegin[i] as number)), ...reach.map((r, i) => r - (layout.padsEnd[i] as number))],
    });
  }
  return scatterThroughWindows(c, layout, dY, weight, layout.group);
}

/**
 * dL/dW of Y = Conv(X, W), shape `layout.weightDims`.
 *
 * Depthwise kernels (one input channel per group) with at most MAX_UNFOLD_TAPS taps: a grouped
 * Conv with a constant one-hot kernel unfolds X into its kernel taps, [N, C * taps, *out], and a
 * batched MatMul contracts each channel's taps with its dY over the positions, then a ReduceSum
 * over the batch. Measured 1.7x faster than the grouped-Conv formulation below (40 vs 68 ms for
 * 32 channels 3x3, 56x56, batch 64, one thread), whose per-group im2col over a kernel as large
 * as the image is what makes it slow.
 *
 * 1x1 kernels, and kernels up to MAX_TAPWISE_TAPS taps with at least MIN_TAPWISE_POSITIONS
 * output positions: one MatMul per tap (tapwiseWeightGradient).
 *
 * Otherwise: a convolution over transposed tensors, batch and (per-group) channels swapped, with
 * dY as the kernel, strides and dilations exchanged; cropped to the kernel size.
 */
function convolutionWeightGradient(c: GradientContext, layout: ConvolutionLayout, x: string, dY: string): string {
  const rank = layout.kernel.length;
  const [outputChannels, channelsPerGroup] = layout.weightDims as [number, number];
  const group = layout.group;
  const groupOutputs = outputChannels / group;
  const taps = layout.kernel.reduce((a, b) => a * b, 1);
  const pads = [...layout.padsBegin, ...layout.padsEnd];
  if (channelsPerGroup === 1 && taps <= MAX_UNFOLD_TAPS) {
    const channels = group;
    const oneHot = new Float32Array(channels * taps * taps);
    for (let channel = 0; channel < channels; channel++) {
      for (let tap = 0; tap < taps; tap++) oneHot[(channel * taps + tap) * taps + tap] = 1;
    }
    const unfolded = c.op('Conv', [x, c.constant(oneHot, [channels * taps, 1, ...layout.kernel])], {
      group: channels,
      strides: [...layout.strides],
      dilations: [...layout.dilations],
      pads,
    });
    const taped = c.op('Reshape', [unfolded, c.ints([0, channels, taps, -1])]); // [N, C, taps, P]
    if (groupOutputs === 1) {
      const column = c.op('Reshape', [dY, c.ints([0, channels, -1, 1])]); // [N, C, P, 1]
      const perSample = c.op('MatMul', [taped, column]); // [N, C, taps, 1]
      return c.op('Reshape', [c.reduceSum(perSample, [0], false), c.ints([...layout.weightDims])]);
    }
    // Depth multiplier m: output channel c*m + q reads input channel c.
    const columns = c.op('Transpose', [c.op('Reshape', [dY, c.ints([0, channels, groupOutputs, -1])])], { perm: [0, 1, 3, 2] });
    const perSample = c.op('MatMul', [taped, columns]); // [N, C, taps, m]
    const summed = c.op('Transpose', [c.reduceSum(perSample, [0], false)], { perm: [0, 2, 1] }); // [C, m, taps]
    return c.op('Reshape', [summed, c.ints([...layout.weightDims])]);
  }
  if (taps === 1 || (taps <= MAX_TAPWISE_TAPS && outputPositions(layout) >= MIN_TAPWISE_POSITIONS)) {
    return tapwiseWeightGradient(c, layout, x, dY);
  }
  const spatial = range(0, rank).map((i) => i + 3);
  let inputs: string; // [ci, group * N, *in]
  let kernels: string; // [Cout, N, *out]
  if (group === 1) {
    inputs = c.op('Transpose', [x], { perm: leadingPermutation([1, 0], rank + 2) });
    kernels = c.op('Transpose', [dY], { perm: leadingPermutation([1, 0], rank + 2) });
  } else {
    const split = c.op('Reshape', [x, c.ints([0, group, channelsPerGroup, ...layout.inputSpatial])]);
    const swapped = c.op('Transpose', [split], { perm: [2, 1, 0, ...spatial] });
    inputs = c.op('Reshape', [swapped, c.ints([channelsPerGroup, -1, ...layout.inputSpatial])]);
    const splitY = c.op('Reshape', [dY, c.ints([0, group, groupOutputs, ...layout.outputSpatial])]);
    const swappedY = c.op('Transpose', [splitY], { perm: [1, 2, 0, ...spatial] });
    kernels = c.op('Reshape', [swappedY, c.ints([outputChannels, -1, ...layout.outputSpatial])]);
  }
  const correlated = c.op('Conv', [inputs, kernels], {
    group,
    strides: [...layout.dilations],
    dilations: [...layout.strides],
    pads,
  }); // [ci, Cout, *k'] with k' >= k
  const reached = layout.inputSpatial.map((size, i) => {
    const extent = ((layout.outputSpatial[i] as number) - 1) * (layout.strides[i] as number) + 1;
    return Math.floor((size + (layout.padsBegin[i] as number) + (layout.padsEnd[i] as number) - extent) / (layout.dilations[i] as number)) + 1;
  });
  const cropped = reached.every((size, i) => size === layout.kernel[i])
    ? correlated
    : c.op('Slice', [correlated, c.ints(new Array<number>(rank).fill(0)), c.ints([...layout.kernel]), c.ints(range(2, 2 + rank))]);
  return c.op('Transpose', [cropped], { perm: leadingPermutation([1, 0], rank + 2) });
}

/**
 * dL/dW of Y = Conv(X, W) as one MatMul per kernel tap: dW[:, :, tap] = dY' . X_tap'^T, where dY'
 * is dY as [group, m, N * P] and X_tap' the input window shifted to that tap (a strided Slice of
 * the padded input, transposed once to [group, cpg, N, *in]) as [group, cpg, N * P]. Each MatMul
 * contracts over the whole batch and all positions at once. Measured against the grouped-Conv
 * formulation (onnxruntime profile, kernel ms per step, batch 64, one thread, two runs each on a
 * shared machine): resnet8 16 channels 3x3 on 28x28 5.7-8.5 vs 12-21, 32 channels on 14x14
 * 4.0-6.1 vs 7.7-12, the 1x1 stride-2 shortcut 0.6-0.9 vs 3.1-3.8; VGG 64 channels on 8x8
 * 3.9-4.3 vs 6.2-7.3. It lost on VGG's 2x2 maps (1.8-2.7 vs 1.4-2.5) and LeNet's 5x5 kernels.
 *
 * Tried against it and dropped (whole step, batch 64, one thread, A/B rounds interleaved, load
 * average 9-11 on 2 cores, kernel ms per step from onnxruntime's profile):
 * - contiguous tap windows (the padded input's rows flattened and dY padded to their width, so
 *   each tap is one contiguous Slice): VGG's Slice time halved (15 -> 7 ms) but the wider MatMuls
 *   and the extra Pad of dY took more (Slice + MatMul + Pad + Transpose 48 -> 52 ms; resnet8
 *   84 -> 96 ms): the Slices are bound by the bytes they write, not by their short rows;
 * - a one-hot grouped Conv unfolding X ([N, C * taps, P]) and one batched MatMul with dY then
 *   ReduceSum over the batch (no Slice, Pad or Transpose left): on resnet8 the unfolding Conv
 *   took what the Slices, Pads and Transposes did (+73 vs -80 ms) and the per-sample MatMuls were
 *   slower (37 -> 62 ms); step median 183 vs 190 ms (a tie), vgg11bn 290 vs 249 ms (slower).
 */
function tapwiseWeightGradient(c: GradientContext, layout: ConvolutionLayout, x: string, dY: string): string {
  const rank = layout.kernel.length;
  const [outputChannels, channelsPerGroup] = layout.weightDims as [number, number];
  const group = layout.group;
  const groupOutputs = outputChannels / group;
  const taps = layout.kernel.reduce((a, b) => a * b, 1);
  const spatialAxes = range(0, rank).map((i) => i + 3);
  const grouped = c.op('Transpose', [c.op('Reshape', [x, c.ints([0, group, channelsPerGroup, ...layout.inputSpatial])])], {
    perm: [1, 2, 0, ...spatialAxes],
  }); // [g, cpg, N, *in]
  const padded = [...layout.padsBegin, ...layout.padsEnd].some((p) => p !== 0)
    ? c.op('Pad', [grouped, c.ints([0, 0, 0, ...layout.padsBegin, 0, 0, 0, ...layout.padsEnd])])
    : grouped;
  const gradientRows = c.op('Reshape', [
    c.op('Transpose', [c.op('Reshape', [dY, c.ints([0, group, groupOutputs, ...layout.outputSpatial])])], { perm: [1, 2, 0, ...spatialAxes] }),
    c.ints([group, groupOutputs, -1]),
  ]); // [g, m, N * P]
  const perTap: string[] = [];
  for (let tap = 0; tap < taps; tap++) {
    // Row-major kernel index of this tap, as the weight's trailing axes are laid out.
    const offsets: number[] = new Array<number>(rank).fill(0);
    let rest = tap;
    for (let i = rank - 1; i >= 0; i--) {
      const k = layout.kernel[i] as number;
      offsets[i] = (rest % k) * (layout.dilations[i] as number);
      rest = Math.floor(rest / k);
    }
    const ends = offsets.map((o, i) => o + ((layout.outputSpatial[i] as number) - 1) * (layout.strides[i] as number) + 1);
    const shifted = c.op('Slice', [padded, c.ints(offsets), c.ints(ends), c.ints(spatialAxes), c.ints([...layout.strides])]);
    const rows = c.op('Reshape', [shifted, c.ints([group, channelsPerGroup, -1])]); // [g, cpg, N * P]
    const product = c.op('MatMul', [gradientRows, c.op('Transpose', [rows], { perm: [0, 2, 1] })]); // [g, m, cpg]
    perTap.push(c.op('Reshape', [product, c.ints([outputChannels, channelsPerGroup, 1])]));
  }
  const stacked = perTap.length === 1 ? (perTap[0] as string) : c.op('Concat', perTap, { axis: 2 });
  return c.op('Reshape', [stacked, c.ints([...layout.weightDims])]);
}

/** dL/dB of a convolution's bias: dY summed over the batch and spatial axes. */
function biasGradient(c: GradientContext, dY: string, spatialRank: number): string {
  return c.reduceSum(dY, [0, ...range(2, 2 + spatialRank)], false);
}

function convolutionLayout(c: GradientContext, weight: string): ConvolutionLayout {
  const weightDims = staticDimsOf(c, weight);
  const geometry = resolveWindowGeometry(c, weightDims);
  return { ...geometry, group: getIntAttribute(c.node, 'group', 1), weightDims };
}

/**
 * Gradients of Conv (any group count, depthwise with a depth multiplier, strides, dilations,
 * explicit, asymmetric or auto pads; 1-D, 2-D and 3-D) and ConvTranspose (explicit pads and
 * output_padding). The spatial sizes of the input and output must be known numbers.
 */
export function convolutionGradientRules(inputGradient: ConvolutionInputGradient = DEFAULT_CONVOLUTION_INPUT_GRADIENT): GradientRuleTable {
  return {
    Conv: {
      backward: (c) => {
        const dY = c.outputGradient(0);
        if (dY === undefined) return [];
        const [x, weight, bias] = [c.input(0), c.input(1), c.input(2)];
        const layout = convolutionLayout(c, weight);
        return [
          c.needsGradient(0) ? convolutionInputGradient(c, layout, dY, weight, inputGradient) : undefined,
          c.needsGradient(1) ? convolutionWeightGradient(c, layout, x, dY) : undefined,
          bias !== '' && c.needsGradient(2) ? biasGradient(c, dY, layout.kernel.length) : undefined,
        ];
      },
    },
    ConvTranspose: {
      backward: (c) => {
        const dY = c.outputGradient(0);
        if (dY === undefined) return [];
        if (findAttribute(c.node, 'output_shape') !== undefined) {
          throw new UnsupportedOperationError(
            `Cannot build the gradient of ${describeNode(c.node)}: ConvTranspose with output_shape is not supported. ` +
              'Re-export the model with explicit pads and output_padding (PyTorch does so).',
          );
        }
        const [x, weight, bias] = [c.input(0), c.input(1), c.input(2)];
        const transposed = convolutionLayout(c, weight);
        // ConvTranspose(X, W) is the adjoint of Conv(., W) from Y's size to X's: both gradients
        // are those of that convolution with the roles of input and output exchanged.
        const adjoint: ConvolutionLayout = { ...transposed, inputSpatial: transposed.outputSpatial, outputSpatial: transposed.inputSpatial };
        const pads = [...adjoint.padsBegin, ...adjoint.padsEnd];
        return [
          c.needsGradient(0)
            ? c.op('Conv', [dY, weight], { group: adjoint.group, strides: [...adjoint.strides], dilations: [...adjoint.dilations], pads })
            : undefined,
          c.needsGradient(1) ? convolutionWeightGradient(c, adjoint, dY, x) : undefined,
          bias !== '' && c.needsGradient(2) ? biasGradient(c, dY, adjoint.kernel.length) : undefined,
        ];
      },
    },
  };
}

/** The convolution gradient rules with the default input-gradient formulation. */
export const convolutionGradients: GradientRuleTable = convolutionGradientRules();
