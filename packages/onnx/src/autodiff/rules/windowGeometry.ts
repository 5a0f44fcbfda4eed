import { UnsupportedOperationError } from '@open-autoglm/core';
import { getIntsAttribute, getStringAttribute } from '../../attributes.js';
import type { Dim } from '../../inferShapes.js';
import { formatDims } from '../../inferShapes.js';
import { describeNode } from '../../OnnxGraph.js';
import type { GraphBuilderContext } from '../GradientRule.js';

/**
 * The sliding-window layout of a Conv, ConvTranspose or pooling node with every size resolved
 * to a number: explicit pads even under `auto_pad`, the spatial sizes of the input and output.
 * The batch and channel dims may stay symbolic; the spatial dims must be known because the
 * gradients restore the input's exact size (output_padding, trailing rows a window never read).
 */
export interface WindowGeometry {
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  readonly padsBegin: readonly number[];
  readonly padsEnd: readonly number[];
  /** Spatial sizes of input 0 (for ConvTranspose: of its input, the smaller tensor). */
  readonly inputSpatial: readonly number[];
  /** Spatial sizes of output 0. */
  readonly outputSpatial: readonly number[];
  /** Channels of input 0 (undefined when symbolic). */
  readonly inputChannels: number | undefined;
}

/** The static spatial dims (from axis 2 on) of a forward tensor, or an error naming the tensor. */
export function spatialDimsOf(c: GraphBuilderContext, name: string): number[] {
  const dims = c.dims(name);
  const spatial = dims?.slice(2);
  if (dims === undefined || dims.length < 3 || spatial === undefined || !spatial.every((d): d is number => typeof d === 'number')) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: the spatial size of "${name}" is ` +
        `${dims === undefined ? 'unknown' : `[${formatDims(dims)}]`}, and its gradient needs it as numbers. ` +
        'Give the model inputs fixed spatial sizes (only the batch dim may be symbolic) and rebuild the step.',
    );
  }
  return spatial;
}

/** The static dims of a forward tensor (weights, per-channel vectors), or an error naming it. */
export function staticDimsOf(c: GraphBuilderContext, name: string): number[] {
  const dims = c.dims(name);
  if (dims === undefined || !dims.every((d): d is number => typeof d === 'number')) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: the shape of "${name}" is ` +
        `${dims === undefined ? 'unknown' : `[${formatDims(dims)}]`}, and its gradient needs it as numbers. ` +
        'Declare the shapes of the model inputs and rebuild the step.',
    );
  }
  return dims;
}

/**
 * Resolves the window attributes of `c.node`: `kernel` comes from the weight (Conv,
 * ConvTranspose: pass its dims) or the `kernel_shape` attribute (pooling). `auto_pad` SAME_*
 * pads are computed as ONNX defines them for Conv and pooling.
 */
export function resolveWindowGeometry(c: GraphBuilderContext, weightDims?: readonly Dim[]): WindowGeometry {
  const node = c.node;
  const inputSpatial = spatialDimsOf(c, c.input(0));
  const outputSpatial = spatialDimsOf(c, c.output(0));
  const rank = inputSpatial.length;
  const kernelFromWeight = weightDims?.slice(2);
  const kernel = kernelFromWeight !== undefined ? kernelFromWeight : getIntsAttribute(node, 'kernel_shape');
  if (kernel === undefined || kernel.length !== rank || !kernel.every((k): k is number => typeof k === 'number')) {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(node)}: its kernel shape is unknown or does not match the ` +
        `${rank} spatial dims of "${c.input(0)}". Re-export the model with a static kernel_shape.`,
    );
  }
  const ones = new Array<number>(rank).fill(1);
  const strides = getIntsAttribute(node, 'strides', ones);
  const dilations = getIntsAttribute(node, 'dilations', ones);
  const autoPad = getStringAttribute(node, 'auto_pad', 'NOTSET');
  let padsBegin: number[];
  let padsEnd: number[];
  if (autoPad === 'NOTSET') {
    const pads = getIntsAttribute(node, 'pads', new Array<number>(2 * rank).fill(0));
    padsBegin = pads.slice(0, rank);
    padsEnd = pads.slice(rank, 2 * rank);
  } else if (autoPad === 'VALID') {
    padsBegin = new Array<number>(rank).fill(0);
    padsEnd = new Array<number>(rank).fill(0);
  } else if ((autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') && node.opType !== 'ConvTranspose') {
    padsBegin = [];
    padsEnd = [];
    for (let i = 0; i < rank; i++) {
      const size = inputSpatial[i] as number;
      const stride = strides[i] ?? 1;
      const extent = ((kernel[i] as number) - 1) * (dilations[i] ?? 1) + 1;
      const total = Math.max(0, (Math.ceil(size / stride) - 1) * stride + extent - size);
      const small = Math.floor(total / 2);
      padsBegin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      padsEnd.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
  } else {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(node)}: auto_pad "${autoPad}" is not supported here. ` +
        'Re-export the model with explicit pads.',
    );
  }
  const channels = c.dims(c.input(0))?.[1];
  return {
    kernel,
    strides,
    dilations,
    padsBegin,
    padsEnd,
    inputSpatial,
    outputSpatial,
    inputChannels: typeof channels === 'number' ? channels : undefined,
  };
}

/**
 * The pads and output_padding with which ConvTranspose (strides, dilations and kernel of the
 * forward window) maps a tensor of `windowCount` window positions back onto exactly `size`
 * input positions along one axis, window `j` starting at `j * stride - padBegin`. The begin pad
 * fixes the alignment; the end pad crops positions past the input, and output_padding adds the
 * trailing positions no window reached (they get zero gradient).
 */
export function transposedWindowPadding(
  size: number,
  windowCount: number,
  kernel: number,
  stride: number,
  dilation: number,
  padBegin: number,
): { padBegin: number; padEnd: number; outputPadding: number } {
  const full = stride * (windowCount - 1) + dilation * (kernel - 1) + 1;
  const overshoot = full - padBegin - size;
  return overshoot >= 0 ? { padBegin, padEnd: overshoot, outputPadding: 0 } : { padBegin, padEnd: 0, outputPadding: -overshoot };
}

/**
 * A ConvTranspose with the forward window layout of `geometry` (strides, dilations, pads): it
 * adds each window's `values` back onto the input positions that window read, restoring the
 * input's exact spatial size. `kernel` and `group` are ConvTranspose's own (the forward weight
 * for a convolution's input gradient, a constant kernel for pooling).
 */
export function scatterThroughWindows(
  c: GraphBuilderContext,
  geometry: WindowGeometry,
  values: string,
  kernel: string,
  group: number,
): string {
  const padding = geometry.inputSpatial.map((size, i) =>
    transposedWindowPadding(
      size,
      geometry.outputSpatial[i] as number,
      geometry.kernel[i] as number,
      geometry.strides[i] as number,
      geometry.dilations[i] as number,
      geometry.padsBegin[i] as number,
    ),
  );
  return c.op('ConvTranspose', [values, kernel], {
    group,
    strides: [...geometry.strides],
    dilations: [...geometry.dilations],
    pads: [...padding.map((p) => p.padBegin), ...padding.map((p) => p.padEnd)],
    output_padding: padding.map((p) => p.outputPadding),
  });
}
