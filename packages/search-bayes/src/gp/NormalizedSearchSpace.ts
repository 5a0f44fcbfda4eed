import { roundToGrid, type ParameterDistribution, type ParameterValue, type TrialParams } from '@open-autoglm/core';
import { scrambledHalton } from './scrambledHalton.js';
import type { UniformRandom } from './scrambledHalton.js';

/** How a parameter maps to its GP coordinate. */
export type GpScale = 'linear' | 'log' | 'categorical';

/** One coordinate of the GP's input space. */
export interface GpDimension {
  readonly name: string;
  readonly scale: GpScale;
  readonly distribution: ParameterDistribution;
  /** Grid spacing in the parameter's own units; 0 for continuous floats, 1 for categorical. */
  readonly step: number;
  /** For categorical: the number of choices; otherwise the distribution's low/high. */
  readonly low: number;
  readonly high: number;
}

/**
 * The GP's view of a search space, after Optuna's `_gp/search_space.py`: each float or int
 * parameter becomes a coordinate in [0, 1] (log parameters on the log scale; a parameter on a
 * grid of `step` maps [low - step/2, high + step/2] to [0, 1], so that every grid point owns an
 * equal share of the interval), and each categorical parameter becomes the index of its choice,
 * compared by the kernel only as equal or different (Hamming distance; equivalent to a one-hot
 * encoding with one shared lengthscale per parameter).
 */
export class NormalizedSearchSpace {
  readonly dimensions: readonly GpDimension[];
  readonly isCategorical: readonly boolean[];
  /** Coordinates optimized by gradient (continuous floats). */
  readonly continuousIndices: readonly number[];
  /** Coordinates searched over a grid (ints, stepped floats, categoricals). */
  readonly discreteIndices: readonly number[];

  constructor(space: Readonly<Record<string, ParameterDistribution>>) {
    const dimensions: GpDimension[] = [];
    for (const [name, distribution] of Object.entries(space)) {
      if (distribution.kind === 'categorical') {
        dimensions.push({ name, scale: 'categorical', distribution, step: 1, low: 0, high: distribution.choices.length });
      } else {
        const step = distribution.kind === 'int' ? (distribution.step ?? 1) : (distribution.step ?? 0);
        dimensions.push({ name, scale: distribution.log === true ? 'log' : 'linear', distribution, step, low: distribution.low, high: distribution.high });
      }
    }
    this.dimensions = dimensions;
    this.isCategorical = dimensions.map((d) => d.scale === 'categorical');
    this.continuousIndices = dimensions.flatMap((d, i) => (d.step === 0 ? [i] : []));
    this.discreteIndices = dimensions.flatMap((d, i) => (d.step > 0 ? [i] : []));
  }

  get dimension(): number {
    return this.dimensions.length;
  }

  /** The normalized coordinate of `value` in dimension `index`. */
  normalizeValue(index: number, value: ParameterValue): number {
    const d = this.dimensionAt(index);
    if (d.distribution.kind === 'categorical') {
      const choiceIndex = d.distribution.choices.indexOf(value);
      if (choiceIndex < 0) throw new RangeError(`parameter "${d.name}": ${String(value)} is not one of its choices`);
      return choiceIndex;
    }
    if (typeof value !== 'number') throw new RangeError(`parameter "${d.name}": expected a number, got ${String(value)}`);
    return this.normalizeNumber(d, value);
  }

  /** Normalized coordinates of `params` (which must hold every dimension). */
  normalize(params: TrialParams): Float64Array {
    const x = new Float64Array(this.dimension);
    this.dimensions.forEach((d, i) => {
      const value = params[d.name];
      if (value === undefined) throw new RangeError(`parameter "${d.name}" is missing`);
      x[i] = this.normalizeValue(i, value);
    });
    return x;
  }

  /** Parameter values for normalized coordinates: clipped to range, snapped to the step grid. */
  unnormalize(x: Float64Array): Record<string, ParameterValue> {
    const params: Record<string, ParameterValue> = {};
    this.dimensions.forEach((d, i) => {
      const coordinate = x[i] as number;
      if (d.distribution.kind === 'categorical') {
        const choices = d.distribution.choices;
        params[d.name] = choices[Math.min(choices.length - 1, Math.max(0, Math.round(coordinate)))] as ParameterValue;
        return;
      }
      params[d.name] = roundToGrid(d.distribution, this.unnormalizeNumber(d, coordinate));
    });
    return params;
  }

  /** Moves coordinate `index` of `x` onto its grid (no-op for continuous and categorical ones). */
  roundCoordinate(x: Float64Array, index: number): void {
    const d = this.dimensionAt(index);
    if (d.scale === 'categorical' || d.step === 0) return;
    const value = this.unnormalizeNumber(d, x[index] as number);
    const snapped = Math.min(d.high, Math.max(d.low, d.low + Math.floor((value - d.low + 0.5 * d.step) / d.step) * d.step));
    x[index] = this.normalizeNumber(d, snapped);
  }

  /** The normalized coordinates of every grid point of a discrete dimension (choice indices for categorical). */
  gridOf(index: number): Float64Array {
    const d = this.dimensionAt(index);
    if (d.scale === 'categorical') return Float64Array.from({ length: d.high }, (_, i) => i);
    const count = Math.round((d.high - d.low) / d.step) + 1;
    return Float64Array.from({ length: count }, (_, i) => this.normalizeNumber(d, Math.min(d.high, d.low + i * d.step)));
  }

  /**
   * `n` quasi-random points (row-major n x dim): scrambled Halton in [0, 1), categorical
   * coordinates mapped to choice indices and discrete ones rounded onto their grids.
   */
  sample(n: number, random: UniformRandom): Float64Array {
    const dim = this.dimension;
    const points = scrambledHalton(n, dim, random);
    const row = new Float64Array(dim);
    for (let p = 0; p < n; p++) {
      row.set(points.subarray(p * dim, (p + 1) * dim));
      this.snapUniform(row);
      points.set(row, p * dim);
    }
    return points;
  }

  /**
   * Turns a point of the unit cube into valid coordinates, in place: categorical ones into the
   * choice index whose equal share of [0, 1) holds them, discrete ones onto their grids.
   */
  snapUniform(x: Float64Array): void {
    for (let i = 0; i < this.dimension; i++) {
      const d = this.dimensions[i] as GpDimension;
      if (d.scale === 'categorical') x[i] = Math.min(d.high - 1, Math.floor((x[i] as number) * d.high));
      else this.roundCoordinate(x, i);
    }
  }

  private dimensionAt(index: number): GpDimension {
    const d = this.dimensions[index];
    if (d === undefined) throw new RangeError(`no dimension ${index} in a ${this.dimension}-dimensional space`);
    return d;
  }

  private scaledBounds(d: GpDimension): [number, number] {
    const low = d.low - 0.5 * d.step;
    const high = d.high + 0.5 * d.step;
    return d.scale === 'log' ? [Math.log(low), Math.log(high)] : [low, high];
  }

  private normalizeNumber(d: GpDimension, value: number): number {
    const [low, high] = this.scaledBounds(d);
    if (high === low) return 0.5;
    const scaled = d.scale === 'log' ? Math.log(value) : value;
    return (scaled - low) / (high - low);
  }

  private unnormalizeNumber(d: GpDimension, coordinate: number): number {
    const [low, high] = this.scaledBounds(d);
    const scaled = coordinate * (high - low) + low;
    return d.scale === 'log' ? Math.exp(scaled) : scaled;
  }
}
