import { type ActivationType, activationParameters, dequantizeValue, integerRange, quantizeValue, type TensorRange } from '../quantizationParameters.js';
import type { Histogram } from './Histogram.js';

/**
 * Clipping threshold on |x| below which `percentile` percent of the values fall: the upper edge of
 * the first bin where the cumulative count reaches that share (ORT's Percentile calibration).
 */
export function percentileThreshold(magnitudes: Histogram, percentile: number): number {
  const wanted = (magnitudes.total * percentile) / 100;
  let cumulative = 0;
  for (let i = 0; i < magnitudes.bins; i++) {
    cumulative += magnitudes.counts[i] as number;
    if (cumulative >= wanted) return magnitudes.edge(i + 1);
  }
  return magnitudes.high;
}

/**
 * TensorRT-style entropy calibration: the clipping threshold on |x| whose quantized distribution
 * (`levels` levels) is closest in KL divergence to the clipped float distribution. For every
 * candidate of i bins, P is the first i bins with the tail folded into the last, Q merges those
 * bins into `levels` groups and spreads each group's mass back uniformly over its non-empty bins.
 * `skipZeroBin` leaves the first bin out (a spike of exact zeros that quantizes without error).
 */
export function entropyThreshold(magnitudes: Histogram, levels: number, skipZeroBin = false): number {
  const bins = magnitudes.bins;
  const counts = skipZeroBin ? Float64Array.from(magnitudes.counts, (c, i) => (i === 0 ? 0 : c)) : magnitudes.counts;
  if (bins <= levels) return magnitudes.high;
  let tail = 0;
  for (let i = levels; i < bins; i++) tail += counts[i] as number;
  let best = bins;
  let bestDivergence = Number.POSITIVE_INFINITY;
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  for (let i = levels; i <= bins; i++) {
    // P: bins [0, i) with everything beyond folded into bin i - 1.
    p.set(counts.subarray(0, i));
    p[i - 1] = (p[i - 1] as number) + tail;
    tail -= i < bins ? (counts[i] as number) : 0;
    // Q: `levels` groups of the unfolded counts, spread over their non-empty bins.
    q.fill(0, 0, i);
    const perGroup = i / levels;
    for (let g = 0; g < levels; g++) {
      const start = Math.floor(g * perGroup);
      const end = g === levels - 1 ? i : Math.floor((g + 1) * perGroup);
      let mass = 0;
      let nonEmpty = 0;
      for (let j = start; j < end; j++) {
        const c = counts[j] as number;
        mass += c;
        if (c > 0) nonEmpty++;
      }
      if (nonEmpty === 0) continue;
      const share = mass / nonEmpty;
      for (let j = start; j < end; j++) if ((counts[j] as number) > 0) q[j] = share;
    }
    const divergence = klDivergence(p, q, i);
    if (divergence < bestDivergence) {
      bestDivergence = divergence;
      best = i;
    }
  }
  return magnitudes.edge(best);
}

/** KL(P || Q) over the first `length` entries, both normalised; bins where P is 0 contribute 0. */
function klDivergence(p: Float64Array, q: Float64Array, length: number): number {
  let pSum = 0;
  let qSum = 0;
  for (let j = 0; j < length; j++) {
    pSum += p[j] as number;
    qSum += q[j] as number;
  }
  if (pSum === 0 || qSum === 0) return Number.POSITIVE_INFINITY;
  let divergence = 0;
  for (let j = 0; j < length; j++) {
    const pj = (p[j] as number) / pSum;
    if (pj === 0) continue;
    const qj = (q[j] as number) / qSum;
    // P has mass where Q has none only in the folded last bin; a tiny floor keeps it finite.
    divergence += pj * Math.log(pj / Math.max(qj, 1e-12));
  }
  return divergence;
}

/**
 * The range [a * min, a * max] (a in (0, 1]) whose quantization gives the smallest mean squared
 * error over the histogram of values, each bin represented by its centre.
 */
export function mseRange(values: Histogram, observed: TensorRange, type: ActivationType, steps = 100): TensorRange {
  const { qmin, qmax } = integerRange(type);
  let best: TensorRange = observed;
  let bestError = Number.POSITIVE_INFINITY;
  for (let k = steps; k >= 1; k--) {
    const candidate = { min: (observed.min * k) / steps, max: (observed.max * k) / steps };
    const parameters = activationParameters(candidate, type);
    let error = 0;
    for (let i = 0; i < values.bins; i++) {
      const count = values.counts[i] as number;
      if (count === 0) continue;
      const x = values.center(i);
      const d = x - dequantizeValue(quantizeValue(x, parameters, qmin, qmax), parameters);
      error += count * d * d;
    }
    if (error < bestError) {
      bestError = error;
      best = candidate;
    }
  }
  return best;
}
