import { erfc } from '../math/erf.js';

/**
 * The scaled complementary error function `erfcx(x) = exp(x^2) erfc(x)`, which never underflows:
 * log expected improvement and log probability of feasibility need it far in the normal's tail.
 */

const oneOverSqrtPi = 1 / Math.sqrt(Math.PI);

// Above this Laplace's continued fraction converges in < 60 terms; below it exp(x^2) erfc(x) is
// exact to a few ulps (x^2 < 4 adds no rounding worth mentioning to exp).
const continuedFractionLimit = 2;

/**
 * erfcx(x) for x >= 2 from the continued fraction
 * erfc(x) = e^{-x^2}/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), by modified
 * Lentz's method.
 */
function erfcxContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return oneOverSqrtPi / f;
}

/** exp(x^2) * erfc(x); finite for every x >= -26 (below, exp(x^2) overflows). */
export function erfcx(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x >= continuedFractionLimit) return x > 1e8 ? oneOverSqrtPi / x : erfcxContinuedFraction(x);
  if (x >= 0) return Math.exp(x * x) * erfc(x);
  // erfc(-y) = 2 - erfc(y), so erfcx(-y) = 2 e^{y^2} - erfcx(y).
  return 2 * Math.exp(x * x) - erfcx(-x);
}
