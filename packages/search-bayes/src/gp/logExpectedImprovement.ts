import { ndtr } from '../math/truncatedNormal.js';
import { lowerMillsRatio, normalPdf } from './millsRatio.js';

const logSqrtTwoPi = 0.5 * Math.log(2 * Math.PI);

// Where z*Phi(z) + phi(z) starts to lose digits to cancellation, switch to the Mills-ratio form.
const directLimit = -1;
// Below this, 1 + z*r(z) has lost ~6 digits; its asymptotic series (error < 105/z^6) takes over.
const asymptoticLimit = -1e3;

/**
 * log E[max(0, Z + z)] for Z ~ N(0, 1), i.e. the log expected improvement of a unit-variance
 * normal whose mean lies z above the incumbent. Three regimes (Ament et al. 2023, "Unexpected
 * improvements to expected improvement", eq. 9, with a tail series instead of their log1mexp):
 *  - z > -1: log(z Phi(z) + phi(z)) directly;
 *  - -1e3 < z <= -1: log phi(z) + log(1 + z r(z)) with r = Phi/phi = sqrt(pi/2) erfcx(-z/sqrt 2),
 *    so that nothing underflows however small EI is;
 *  - z <= -1e3: 1 + z r(z) = z^-2 (1 - 3 z^-2 + 15 z^-4 - ...), whose cancellation is done
 *    analytically.
 */
export function standardLogEi(z: number): number {
  if (z > directLimit) return Math.log(z * ndtr(z) + normalPdf(z));
  const logPdf = -0.5 * z * z - logSqrtTwoPi;
  if (z > asymptoticLimit) return logPdf + Math.log1p(z * lowerMillsRatio(z));
  const w = 1 / (z * z);
  return logPdf + Math.log(w) + Math.log1p(w * (-3 + 15 * w));
}

/** d/dz of `standardLogEi`: Phi(z) / EI(z), with the same three regimes. */
export function standardLogEiDerivative(z: number): number {
  if (z > directLimit) {
    const cdf = ndtr(z);
    return cdf / (z * cdf + normalPdf(z));
  }
  if (z > asymptoticLimit) {
    const r = lowerMillsRatio(z);
    return r / (1 + z * r);
  }
  const w = 1 / (z * z);
  // d/dz [-z^2/2 - 2 log|z| + log(1 - 3w + 15w^2)], with dw/dz = -2w/z.
  const series = 1 - 3 * w + 15 * w * w;
  return -z - 2 / z + ((-3 + 30 * w) * (-2 * w / z)) / series;
}

/**
 * log EI of N(mean, variance) over `threshold` (improvement = y - threshold, maximization), and
 * its partial derivatives with respect to mean and variance.
 */
export function logEi(mean: number, variance: number, threshold: number): { value: number; dMean: number; dVariance: number } {
  const sigma = Math.sqrt(variance);
  const z = (mean - threshold) / sigma;
  const value = Math.log(sigma) + standardLogEi(z);
  const dz = standardLogEiDerivative(z);
  // d/dsigma = 1/sigma - dz * z / sigma; dsigma/dvariance = 1 / (2 sigma).
  return { value, dMean: dz / sigma, dVariance: (1 - dz * z) / (2 * variance) };
}
