/** A source of uniform numbers in [0, 1); the samplers pass their seeded generator. */
export type UniformRandom = () => number;

function firstPrimes(count: number): number[] {
  const primes: number[] = [];
  for (let candidate = 2; primes.length < count; candidate++) {
    if (primes.every((p) => p * p > candidate || candidate % p !== 0)) primes.push(candidate);
  }
  return primes;
}

/**
 * `n` points of a randomly scrambled Halton sequence in [0, 1)^dim (row-major n x dim): dimension
 * j uses the j-th prime as base and an independent random permutation of the digits at every
 * digit position (Owen-style random digit scrambling). Scrambling removes the correlation between
 * dimensions with large bases that plain Halton shows, and keeps the low discrepancy; Optuna uses
 * a scrambled Sobol sequence for the same purpose (its preliminary acquisition samples).
 */
export function scrambledHalton(n: number, dim: number, random: UniformRandom): Float64Array {
  const out = new Float64Array(n * dim);
  const bases = firstPrimes(dim);
  // A random starting index, so that different calls do not share their first points.
  const start = Math.floor(random() * 1024);
  for (let j = 0; j < dim; j++) {
    const base = bases[j] as number;
    // Enough digits to tell 2^32 indices apart.
    const digits = Math.ceil(32 / Math.log2(base));
    const permutations: Uint16Array[] = [];
    for (let level = 0; level < digits; level++) {
      const permutation = Uint16Array.from({ length: base }, (_, i) => i);
      for (let i = base - 1; i > 0; i--) {
        const r = Math.floor(random() * (i + 1));
        const swap = permutation[i] as number;
        permutation[i] = permutation[r] as number;
        permutation[r] = swap;
      }
      permutations.push(permutation);
    }
    for (let i = 0; i < n; i++) {
      let index = start + i;
      let value = 0;
      let scale = 1 / base;
      for (let level = 0; level < digits; level++) {
        const digit = index % base;
        index = Math.floor(index / base);
        value += ((permutations[level] as Uint16Array)[digit] as number) * scale;
        scale /= base;
      }
      // Random digits beyond the last level fill the interval the digits above leave open.
      value += random() * scale * base;
      out[i * dim + j] = Math.min(value, 1 - Number.EPSILON / 2);
    }
  }
  return out;
}
