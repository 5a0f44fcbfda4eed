import { UnsupportedOperationError } from '@open-autoglm/core';
import { getIntAttribute } from '../../attributes.js';
import { describeNode } from '../../OnnxGraph.js';
import { DataType } from '../../proto.js';
import { arrayToTensor } from '../../tensor.js';
import type { GradientContext, GradientRuleTable } from '../GradientRule.js';
import { resolveWindowGeometry, scatterThroughWindows, spatialDimsOf, type WindowGeometry } from './windowGeometry.js';

/** The most negative float32: pads the input of a max window without ever winning it. */
const LOWEST_FLOAT32 = -3.4028234663852886e38;

function channelsOf(c: GradientContext, geometry: WindowGeometry): number {
  if (geometry.inputChannels === undefined) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: the channel count of "${c.input(0)}" is unknown, ` +
        'and the backward pass builds a per-channel kernel from it. Declare the shapes of the model inputs and rebuild the step.',
    );
  }
  return geometry.inputChannels;
}

/** A [C * taps, 1, ...kernel] kernel whose filter `c * taps + t` picks tap t of channel c. */
function oneHotKernel(c: GradientContext, channels: number, kernel: readonly number[]): string {
  const taps = kernel.reduce((a, b) => a * b, 1);
  const values = new Float32Array(channels * taps * taps);
  for (let channel = 0; channel < channels; channel++) {
    for (let tap = 0; tap < taps; tap++) values[(channel * taps + tap) * taps + tap] = 1;
  }
  return c.constant(values, [channels * taps, 1, ...kernel]);
}


/**
 * dL/dX of MaxPool with overlapping windows: a MaxPool with the Indices output (flat positions
 * in X, storage order 0) and ScatterElements adding dY there. For overlapping windows this
 * measured as fast as or faster than the unfold formulation below (3x3/2 pad 1 on
 * [64, 16, 32, 32]: 9.2 vs 9.1 ms with one thread, 11.9 vs 17.1 ms with two).
 */
function maxPoolScatterGradient(c: GradientContext, dY: string, geometry: WindowGeometry): string {
  const x = c.input(0);
  const [, indices] = c.add(
    'MaxPool',
    [x],
    {
      kernel_shape: [...geometry.kernel],
      strides: [...geometry.strides],
      dilations: [...geometry.dilations],
      pads: [...geometry.padsBegin, ...geometry.padsEnd],
      ceil_mode: getIntAttribute(c.node, 'ceil_mode', 0),
    },
    2,
  );
  const flat = c.ints([-1]);
  const zeros = c.op('ConstantOfShape', [c.op('Reshape', [c.op('Size', [x]), c.ints([1])])], {
    value: arrayToTensor('value', Float32Array.of(0), [1]),
  });
  const scattered = c.op('ScatterElements', [zeros, c.op('Reshape', [indices as string, flat]), c.op('Reshape', [dY, flat])], {
    reduction: 'add',
  });
  return c.op('Reshape', [scattered, c.shape(x)]);
}

/**
 * dL/dX of MaxPool: each window's gradient goes to the first position (in row-major window
 * order) holding the window's maximum, which is the element onnxruntime's and PyTorch's
 * max-pool indices point to, ties included. Overlapping windows use `maxPoolScatterGradient`.
 * Non-overlapping windows (the common 2x2/2) go without the Indices output: the input, padded with
 * the lowest float, is unfolded into its window taps by a grouped Conv with a one-hot kernel;
 * the taps equal to Y are marked, a CumSum along the taps keeps the first mark, and a grouped
 * ConvTranspose with the same kernel adds the masked dY back onto the input positions.
 * Measured 1.5-2x faster than MaxPool-with-Indices + ScatterElements on 2x2/2 windows (LeNet-5's
 * [64, 6, 28, 28]: 1.0 vs 2.1 ms; [64, 16, 32, 32]: 4.4 vs 6.7 ms, one thread), since
 * onnxruntime's MaxPool with Indices is a slow generic kernel (`npm run bench:gradients`).
 * An input holding +inf or NaN breaks the one-hot products.
 */
function maxPoolInputGradient(c: GradientContext, dY: string): string {
  const geometry = resolveWindowGeometry(c);
  const overlapping = geometry.kernel.some((k, i) => (k - 1) * (geometry.dilations[i] as number) + 1 > (geometry.strides[i] as number));
  if (overlapping) return maxPoolScatterGradient(c, dY, geometry);
  const channels = channelsOf(c, geometry);
  const taps = geometry.kernel.reduce((a, b) => a * b, 1);
  // Pads the end far enough for ceil_mode windows that run past the input.
  const padsEnd = geometry.inputSpatial.map((size, i) => {
    const reach = ((geometry.outputSpatial[i] as number) - 1) * (geometry.strides[i] as number) +
      ((geometry.kernel[i] as number) - 1) * (geometry.dilations[i] as number) + 1;
    return Math.max(geometry.padsEnd[i] as number, reach - size - (geometry.padsBegin[i] as number));
  });
  const padded = [...geometry.padsBegin, ...padsEnd].every((p) => p === 0)
    ? c.input(0)
    : c.op('Pad', [c.input(0), c.ints([0, 0, ...geometry.padsBegin, 0, 0, ...padsEnd]), c.scalar(LOWEST_FLOAT32)]);
  const kernel = oneHotKernel(c, channels, geometry.kernel);
  const unfolded = c.op('Conv', [padded, kernel], { group: channels, strides: [...geometry.strides], dilations: [...geometry.dilations] });
  const tapAxis = c.ints([2]);
  const windows = c.op('Reshape', [unfolded, c.ints([0, channels, taps, ...geometry.outputSpatial])]); // [N, C, taps, *out]
  const isMax = c.op('Equal', [windows, c.op('Unsqueeze', [c.output(0), tapAxis])]);
  const maxCount = c.op('CumSum', [c.op('Cast', [isMax], { to: DataType.FLOAT }), c.constant(BigInt64Array.of(2n), [])]);
  const first = c.op('And', [isMax, c.op('Equal', [maxCount, c.scalar(1)])]);
  // Cast + Mul rather than Where: LeNet-5's two MaxPool backwards took 2.2-2.4 instead of 3.0 ms
  // of kernel time per step (batch 64, one thread; Where alone 0.45 ms on pool1, Cast + Mul 0.1).
  const routed = c.op('Mul', [c.op('Unsqueeze', [dY, tapAxis]), c.op('Cast', [first], { to: DataType.FLOAT })]);
  const perTap = c.op('Reshape', [routed, c.ints([0, channels * taps, ...geometry.outputSpatial])]);
  return scatterThroughWindows(c, geometry, perTap, kernel, channels);
}

/**
 * The number of input positions window `j` of one axis divides by: the taps inside the input,
 * or with count_include_pad those inside the input and its explicit pads (never the extra
 * positions ceil_mode reaches past the end pad), as onnxruntime's AveragePool counts.
 */
function windowCounts(size: number, windows: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, includePad: boolean): number[] {
  const [low, high] = includePad ? [-padBegin, size + padEnd] : [0, size];
  return Array.from({ length: windows }, (_, j) => {
    let count = 0;
    for (let tap = 0; tap < kernel; tap++) {
      const position = j * stride - padBegin + tap * dilation;
      if (position >= low && position < high) count++;
    }
    return count;
  });
}

/** dL/dX of AveragePool: dY divided by each window's count, added back over the window. */
function averagePoolInputGradient(c: GradientContext, dY: string): string {
  const geometry = resolveWindowGeometry(c);
  const channels = channelsOf(c, geometry);
  const includePad = getIntAttribute(c.node, 'count_include_pad', 0) === 1;
  const counts = geometry.inputSpatial.map((size, i) =>
    windowCounts(
      size,
      geometry.outputSpatial[i] as number,
      geometry.kernel[i] as number,
      geometry.strides[i] as number,
      geometry.dilations[i] as number,
      geometry.padsBegin[i] as number,
      geometry.padsEnd[i] as number,
      includePad,
    ),
  );
  // The divisor of an output position is the product of its per-axis counts.
  const total = geometry.outputSpatial.reduce((a, b) => a * b, 1);
  const inverse = new Float32Array(total);
  const uniform = counts.every((axis) => axis.every((n) => n === axis[0]));
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let divisor = 1;
    for (let axis = counts.length - 1; axis >= 0; axis--) {
      const size = geometry.outputSpatial[axis] as number;
      divisor *= (counts[axis] as number[])[rest % size] as number;
      rest = Math.floor(rest / size);
    }
    inverse[flat] = divisor === 0 ? 0 : 1 / divisor;
  }
  const scaled = c.op('Mul', [
    dY,
    uniform ? c.scalar(inverse[0] as number) : c.constant(inverse, [1, 1, ...geometry.outputSpatial]),
  ]);
  const taps = geometry.kernel.reduce((a, b) => a * b, 1);
  const ones = c.constant(new Float32Array(channels * taps).fill(1), [channels, 1, ...geometry.kernel]);
  return scatterThroughWindows(c, geometry, scaled, ones, channels);
}

/**
 * Gradients of MaxPool (any window, stride, dilation, pads, ceil_mode; ties go where
 * onnxruntime's Indices point, with or without overlapping windows), AveragePool
 * (count_include_pad both ways, ceil_mode) and GlobalAveragePool. The spatial sizes and the channel count must be known numbers.
 */
export const poolingGradients: GradientRuleTable = {
  MaxPool: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [maxPoolInputGradient(c, dY)];
    },
  },
  AveragePool: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      return [averagePoolInputGradient(c, dY)];
    },
  },
  GlobalAveragePool: {
    backward: (c) => {
      const dY = c.outputGradient(0);
      if (dY === undefined || !c.needsGradient(0)) return [];
      const x = c.input(0);
      const positions = spatialDimsOf(c, x).reduce((a, b) => a * b, 1);
      return [c.op('Expand', [c.op('Mul', [dY, c.scalar(1 / positions)]), c.shape(x)])];
    },
  },
};
