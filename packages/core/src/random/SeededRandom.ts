import { getRandomValues } from 'node:crypto';
import { ConfigError } from '../errors/errors.js';

/** The four 32-bit words of a `SeededRandom`'s state, for checkpoints. */
export type SeededRandomState = readonly [number, number, number, number];

const GOLDEN_GAMMA = 0x9e3779b9;

/**
 * A small, fast, reproducible pseudo-random generator: xoshiro128** by Blackman and Vigna
 * (https://prng.di.unimi.it/xoshiro128starstar.c), 128 bits of state, period 2^128 - 1. A seed
 * is expanded into the state with SplitMix32 (the seed plus multiples of the golden-ratio
 * increment 0x9E3779B9, each passed through MurmurHash3's fmix32 finalizer), as the authors
 * recommend, so nearby seeds give unrelated streams. Not for cryptography.
 *
 * The whole state is four integers (`state`), so a training run can save it in a checkpoint
 * and continue the exact same stream after a restart. One implementation serves the training
 * engine (shuffling, initialization) and the search samplers, so a seed means the same everywhere.
 */
export class SeededRandom {
  private readonly words: Uint32Array;

  /** A generator for a seed (any safe integer; its low 32 bits and its sign/high part are mixed in). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new ConfigError(`A random seed must be a whole number, got ${String(seed)}. Pass an integer such as 0 or 1234.`);
    }
    this.words = new Uint32Array(4);
    // Fold the high part in, so seeds above 2^32 do not collide with small ones.
    let x = ((seed >>> 0) ^ Math.imul(Math.floor(seed / 0x1_0000_0000) | 0, GOLDEN_GAMMA)) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + GOLDEN_GAMMA) >>> 0;
      this.words[i] = fmix32(x);
    }
    if (this.words.every((w) => w === 0)) this.words[0] = 1; // the all-zero state is a fixed point
  }

  /** A generator continuing from a saved state (see `state`). */
  static fromState(state: SeededRandomState): SeededRandom {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffff_ffff)) {
      throw new ConfigError(`A random generator state is four unsigned 32-bit integers, got [${state.join(', ')}].`);
    }
    if (state.every((w) => w === 0)) {
      throw new ConfigError('A random generator state of all zeros is invalid (the generator would only return 0).');
    }
    const random = new SeededRandom(0);
    random.words.set(state);
    return random;
  }

  /** An unseeded generator (state from the OS's entropy): for runs the user did not ask to reproduce. */
  static fromEntropy(): SeededRandom {
    const words = getRandomValues(new Uint32Array(4));
    if (words.every((w) => w === 0)) words[0] = 1;
    return SeededRandom.fromState([words[0] as number, words[1] as number, words[2] as number, words[3] as number]);
  }

  /** The current state; `SeededRandom.fromState(r.state)` continues exactly where `r` is. */
  get state(): SeededRandomState {
    return [this.words[0] as number, this.words[1] as number, this.words[2] as number, this.words[3] as number];
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s = this.words;
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s[2] = (s[2] as number) ^ s0;
    s[3] = (s[3] as number) ^ s1;
    s[1] = s1 ^ (s[2] as number);
    s[0] = s0 ^ (s[3] as number);
    s[2] = (s[2] as number) ^ t;
    s[3] = rotl(s[3] as number, 11);
    return result;
  }

  /** A double uniform in [0, 1), with 53 random bits (two draws). */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67_108_864 + low) / 9_007_199_254_740_992;
  }

  /** A double uniform in [low, high). */
  nextFloatIn(low: number, high: number): number {
    return low + (high - low) * this.nextFloat();
  }

  /** An integer uniform in [0, bound), without modulo bias (rejection sampling). */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 0x1_0000_0000) {
      throw new ConfigError(`nextInt needs a whole bound in [1, 2^32], got ${String(bound)}.`);
    }
    // Reject the top partial copy of [0, bound) in the 2^32 range, so every value is equally likely.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    for (;;) {
      const draw = this.nextUint32();
      if (draw < limit) return draw % bound;
    }
  }

  /** A standard normal sample (Box-Muller on two uniforms). */
  nextNormal(): number {
    const u1 = 1 - this.nextFloat(); // in (0, 1], so the logarithm is finite
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * An index drawn with probability proportional to `weights` (non-negative, not all zero): one
   * uniform draw against the running sum.
   */
  nextWeightedIndex(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i] ?? 0;
    if (!(total > 0) || !Number.isFinite(total)) {
      throw new ConfigError(`nextWeightedIndex needs non-negative, finite weights that are not all zero, got a total of ${total}.`);
    }
    let threshold = this.nextFloat() * total;
    for (let i = 0; i < weights.length; i++) {
      threshold -= weights[i] ?? 0;
      if (threshold < 0) return i;
    }
    // Rounding can leave a sliver past the last weight: return the last positive one.
    for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return i;
    return weights.length - 1;
  }

  /** A new generator seeded from this one's next draw: an independent stream for a sub-task. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates, drawing n-1 integers). */
  permutation(n: number): Uint32Array {
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = order[i] as number;
      order[i] = order[j] as number;
      order[j] = swap;
    }
    return order;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** MurmurHash3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function fmix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85eb_ca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2_ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}
