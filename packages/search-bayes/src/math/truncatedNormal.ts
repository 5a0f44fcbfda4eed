import { erf, erfc } from './erf.js';

/**
 * The truncated normal distribution in log space, as TPE's Parzen estimators need it: masses of
 * far tails (a component centred well outside the interval) must not round to zero.
 */

const halfLogTwoPi = 0.5 * Math.log(2 * Math.PI);

/** The standard normal CDF. */
export function ndtr(a: number): number {
  const x = a / Math.SQRT2;
  if (x < -Math.SQRT1_2) return 0.5 * erfc(-x);
  if (x < Math.SQRT1_2) return 0.5 + 0.5 * erf(x);
  return 1 - 0.5 * erfc(x);
}

/** log of the standard normal CDF, accurate for very negative `a` (asymptotic series). */
export function logNdtr(a: number): number {
  if (a > 6) return -ndtr(-a);
  if (a > -20) return Math.log(ndtr(a));
  // log Phi(a) ~ -a^2/2 - log(-a) - log(2 pi)/2 + log(1 - 1/a^2 + 3/a^4 - 15/a^6 ...)
  const logLeading = -0.5 * a * a - Math.log(-a) - halfLogTwoPi;
  let total = 1;
  let previous = 0;
  let term = 1;
  const inverseSquare = 1 / (a * a);
  for (let i = 1; Math.abs(total - previous) > Number.EPSILON && i < 100; i++) {
    previous = total;
    term *= -(2 * i - 1) * inverseSquare;
    total += term;
  }
  return logLeading + Math.log(total);
}

/** log(exp(p) - exp(q)) for p >= q. */
function logDiff(logP: number, logQ: number): number {
  return logP + Math.log1p(-Math.exp(logQ - logP));
}

/** log(exp(p) + exp(q)). */
function logSum(logP: number, logQ: number): number {
  const top = Math.max(logP, logQ);
  if (top === -Infinity) return -Infinity;
  return top + Math.log(Math.exp(logP - top) + Math.exp(logQ - top));
}

/** log of the standard normal mass between `a` and `b` (a <= b). */
export function logGaussMass(a: number, b: number): number {
  if (b <= 0) return logDiff(logNdtr(b), logNdtr(a));
  if (a > 0) return logDiff(logNdtr(-a), logNdtr(-b));
  return Math.log1p(-ndtr(a) - ndtr(-b));
}

/**
 * The x with log Phi(x) = logP, by Newton's method on log Phi. log Phi is concave and increasing,
 * so from a start left of the root every step stays left of it and the iterates rise to it
 * monotonically; the start -sqrt(-2 logP) (or 0 when p >= 1/2) is left of the root.
 */
function inverseLogNdtr(logP: number): number {
  if (logP === -Infinity) return -Infinity;
  if (logP >= 0) return Infinity;
  let x = logP < -Math.LN2 ? -Math.sqrt(-2 * logP) : 0;
  for (let i = 0; i < 100; i++) {
    const logPhi = logNdtr(x);
    // d/dx log Phi(x) = phi(x) / Phi(x)
    const step = (logPhi - logP) / Math.exp(-0.5 * x * x - halfLogTwoPi - logPhi);
    x -= step;
    if (!(Math.abs(step) > 1e-14 * (1 + Math.abs(x)))) break;
  }
  return x;
}

/**
 * The quantile `q` in (0, 1) of the standard normal truncated to [a, b]: works from the side of
 * the interval nearer the mode, so that a tail quantile is not lost to cancellation.
 */
export function truncatedNormalQuantile(q: number, a: number, b: number): number {
  if (q <= 0) return a;
  if (q >= 1) return b;
  const logMass = logGaussMass(a, b);
  const x =
    a < 0 ? inverseLogNdtr(logSum(logNdtr(a), Math.log(q) + logMass)) : -inverseLogNdtr(logSum(logNdtr(-b), Math.log1p(-q) + logMass));
  return Math.min(b, Math.max(a, x));
}

/**
 * log density at `x` of the normal (`mu`, `sigma`) truncated to [low, high], `-Infinity`
 * outside. (Optuna 3.1 leaves out the `-log sigma` term; the density here is the true one.)
 */
export function truncatedNormalLogPdf(x: number, mu: number, sigma: number, low: number, high: number): number {
  if (x < low || x > high) return -Infinity;
  const z = (x - mu) / sigma;
  return -0.5 * z * z - halfLogTwoPi - Math.log(sigma) - logGaussMass((low - mu) / sigma, (high - mu) / sigma);
}
