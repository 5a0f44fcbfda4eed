import type { UniformRandom } from './scrambledHalton.js';

/**
 * A Latin hypercube design of `size` points in [0, 1)^d built one coordinate at a time, so that a
 * define-by-run objective can ask for its parameters in any order: each named coordinate gets its
 * own random permutation of `size` equal strata, and point k draws uniformly inside stratum
 * permutation[k]. Every coordinate's `size` values then cover its range evenly, one per stratum,
 * where independent uniform draws leave gaps and clumps (McKay, Beckman & Conover 1979).
 */
export class LatinHypercubeDesign {
  private readonly strata = new Map<string, Uint32Array>();

  constructor(
    readonly size: number,
    private readonly random: UniformRandom,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a Latin hypercube needs a positive integer number of points, got ${size}`);
  }

  /** Coordinate `name` of point `point` (0 <= point < size), in [0, 1). */
  coordinate(name: string, point: number): number {
    if (!Number.isInteger(point) || point < 0 || point >= this.size) {
      throw new RangeError(`point ${point} is outside a Latin hypercube of ${this.size} points`);
    }
    let permutation = this.strata.get(name);
    if (permutation === undefined) {
      permutation = Uint32Array.from({ length: this.size }, (_, i) => i);
      for (let i = this.size - 1; i > 0; i--) {
        const r = Math.floor(this.random() * (i + 1));
        const swap = permutation[i] as number;
        permutation[i] = permutation[r] as number;
        permutation[r] = swap;
      }
      this.strata.set(name, permutation);
    }
    return Math.min(((permutation[point] as number) + this.random()) / this.size, 1 - Number.EPSILON / 2);
  }
}
