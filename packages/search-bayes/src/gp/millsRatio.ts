import { ndtr } from '../math/truncatedNormal.js';
import { erfcx } from './erfcx.js';

const sqrtHalfPi = Math.sqrt(0.5 * Math.PI);
const logSqrtTwoPi = 0.5 * Math.log(2 * Math.PI);

/** Standard normal density. */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z - logSqrtTwoPi);
}

/**
 * Mills ratio of the lower tail, Phi(z) / phi(z), without underflow: for z < 0 it is
 * sqrt(pi/2) erfcx(-z/sqrt(2)), which tends to 1/|z| instead of 0/0.
 */
export function lowerMillsRatio(z: number): number {
  if (z < 0) return sqrtHalfPi * erfcx(-z * Math.SQRT1_2);
  return ndtr(z) / normalPdf(z);
}

/** phi(z) / Phi(z) = d/dz log Phi(z), stable in both tails. */
export function inverseMillsRatio(z: number): number {
  if (z < 0) return 1 / lowerMillsRatio(z);
  return normalPdf(z) / ndtr(z);
}
