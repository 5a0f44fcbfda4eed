/** Integer types activations can be quantized to (weights are always int8 symmetric). */
export type ActivationType = 'uint8' | 'int8';

/** Scale and zero point of an affine quantization: `x ~ (q - zeroPoint) * scale`. */
export interface QuantizationParameters {
  readonly scale: number;
  readonly zeroPoint: number;
}

/** A real-valued range observed (or chosen by calibration) for a tensor. */
export interface TensorRange {
  readonly min: number;
  readonly max: number;
}

/** The smallest normal float32: a smaller scale rounds to 0 or to a denormal (which kernels may flush to 0). */
const FLOAT32_MIN_NORMAL = 2 ** -126;

/** The integer range of a type: uint8 [0, 255], int8 [-128, 127]; symmetric int8 [-127, 127]. */
export function integerRange(type: ActivationType, symmetric = false): { qmin: number; qmax: number } {
  if (type === 'uint8') return { qmin: 0, qmax: 255 };
  return symmetric ? { qmin: -127, qmax: 127 } : { qmin: -128, qmax: 127 };
}

/**
 * Asymmetric parameters for an activation range. The range is widened to include 0 so that 0 is
 * exactly representable (zero padding, ReLU outputs); scale = (rmax - rmin) / (qmax - qmin),
 * zeroPoint = round(qmin - rmin / scale). A degenerate range (all zeros, or too narrow for a
 * normal float32 scale) gets scale 1.
 */
export function activationParameters(range: TensorRange, type: ActivationType): QuantizationParameters {
  checkRange(range);
  const rmin = Math.min(range.min, 0);
  const rmax = Math.max(range.max, 0);
  const { qmin, qmax } = integerRange(type);
  const scale = Math.fround((rmax - rmin) / (qmax - qmin));
  // A range too narrow for a normal float32 scale (all zeros, or ~1e-36 wide) would give scale 0
  // (zero point NaN) or a denormal: its values are 0 for any purpose. The zero point stays at the
  // bottom of the range for [0, 0] (a dead ReLU channel whose folded ReLU is QuantizeLinear's
  // saturation: negative inputs must still clip to 0), at the top for a range ending at 0.
  if (!(scale >= FLOAT32_MIN_NORMAL)) {
    return { scale: 1, zeroPoint: rmin === 0 ? qmin : rmax === 0 ? qmax : Math.trunc((qmin + qmax + 1) / 2) };
  }
  const zeroPoint = Math.min(qmax, Math.max(qmin, Math.round(qmin - rmin / scale)));
  return { scale, zeroPoint };
}

/**
 * Symmetric int8 scale for a weight slice: max|w| / 127, zero point 0. [-127, 127] rather than
 * [-128, 127] keeps the grid symmetric, so -w quantizes to -q. An all-zero slice (or one so small
 * that its scale would not be a normal float32) gets scale 1.
 */
export function symmetricWeightScale(absMax: number): number {
  if (!Number.isFinite(absMax)) throw new RangeError(`Weight magnitude ${absMax} is not finite.`);
  const scale = Math.fround(absMax / 127);
  return scale >= FLOAT32_MIN_NORMAL ? scale : 1;
}

/** q = clip(round(x / scale) + zeroPoint, qmin, qmax), rounding half to even as QuantizeLinear does. */
export function quantizeValue(x: number, parameters: QuantizationParameters, qmin: number, qmax: number): number {
  const q = roundHalfToEven(x / parameters.scale) + parameters.zeroPoint;
  return Math.min(qmax, Math.max(qmin, q));
}

/** x = (q - zeroPoint) * scale. */
export function dequantizeValue(q: number, parameters: QuantizationParameters): number {
  return (q - parameters.zeroPoint) * parameters.scale;
}

/** Round half to even (banker's rounding), ONNX QuantizeLinear's rounding mode. */
export function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkRange(range: TensorRange): void {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new RangeError(`Invalid calibration range [${range.min}, ${range.max}]: expected finite min <= max.`);
  }
}
