import type { AcquisitionFunction } from './LogEiAcquisition.js';
import { minimizeBoxedLbfgs } from './minimizeBoxedLbfgs.js';
import type { NormalizedSearchSpace } from './NormalizedSearchSpace.js';
import type { UniformRandom } from './scrambledHalton.js';

export interface OptimizeAcquisitionOptions {
  /** The GP's inverse squared lengthscales, used to precondition the gradient search. */
  readonly inverseSquaredLengthscales: Float64Array;
  readonly random: UniformRandom;
  /** Extra local-search starts (Optuna passes the best trial so far). */
  readonly warmStarts?: readonly Float64Array[];
  /** Default 2048 (Optuna's). */
  readonly preliminarySamples?: number;
  /** Local searches in total, the best sample and the warm starts included; default 10 (Optuna's). */
  readonly localSearches?: number;
  /** Default 1e-4 (Optuna's). */
  readonly tolerance?: number;
}

export interface AcquisitionOptimum {
  readonly x: Float64Array;
  readonly value: number;
}

// Optuna searches integer grids exhaustively up to this many points, by line search beyond.
const maxExhaustiveGrid = 16;
const maxLocalSearchRounds = 100;

/**
 * Maximizes `acquisition` over `space` as Optuna's `optimize_acqf_mixed` does: evaluate
 * quasi-random samples, start local searches from the best one, from others drawn with
 * probability proportional to exp(acquisition) (roulette) and from the warm starts, and keep the
 * best result. Each local search alternates a gradient search (box-bounded L-BFGS) over the
 * continuous coordinates with a search over each discrete coordinate's grid, until nothing moves.
 */
export function optimizeAcquisition(acquisition: AcquisitionFunction, space: NormalizedSearchSpace, options: OptimizeAcquisitionOptions): AcquisitionOptimum {
  const dim = space.dimension;
  const warmStarts = options.warmStarts ?? [];
  const sampleCount = options.preliminarySamples ?? 2048;
  const localSearches = options.localSearches ?? 10;
  const tolerance = options.tolerance ?? 1e-4;
  const samples = space.sample(sampleCount, options.random);
  const values = new Float64Array(sampleCount);
  let bestIndex = 0;
  for (let p = 0; p < sampleCount; p++) {
    values[p] = acquisition.value(samples.subarray(p * dim, (p + 1) * dim));
    if ((values[p] as number) > (values[bestIndex] as number)) bestIndex = p;
  }
  const bestSampleValue = values[bestIndex] as number;

  // Roulette over the other samples, without replacement, weights exp(f - f_max).
  const weights = Float64Array.from(values, (v) => Math.exp(v - bestSampleValue));
  weights[bestIndex] = 0;
  let positive = 0;
  for (const w of weights) if (w > 0) positive++;
  const extra = Math.max(0, Math.min(localSearches - warmStarts.length - 1, positive));
  const starts: Float64Array[] = [Float64Array.from(samples.subarray(bestIndex * dim, (bestIndex + 1) * dim))];
  for (let s = 0; s < extra; s++) {
    let total = 0;
    for (const w of weights) total += w;
    if (!(total > 0)) break;
    let threshold = options.random() * total;
    let chosen = -1;
    for (let p = 0; p < sampleCount; p++) {
      const w = weights[p] as number;
      if (w <= 0) continue;
      chosen = p;
      threshold -= w;
      if (threshold < 0) break;
    }
    weights[chosen] = 0;
    starts.push(Float64Array.from(samples.subarray(chosen * dim, (chosen + 1) * dim)));
  }
  for (const warm of warmStarts) starts.push(Float64Array.from(warm));

  let best: AcquisitionOptimum = { x: starts[0] as Float64Array, value: bestSampleValue };
  for (const start of starts) {
    const result = localSearch(acquisition, space, start, options.inverseSquaredLengthscales, tolerance);
    if (result.value > best.value) best = result;
  }
  return best;
}

/** One local search from `start` (Optuna's `local_search_mixed`). */
export function localSearch(
  acquisition: AcquisitionFunction,
  space: NormalizedSearchSpace,
  start: Float64Array,
  inverseSquaredLengthscales: Float64Array,
  tolerance: number,
): AcquisitionOptimum {
  let x: Float64Array = Float64Array.from(start);
  let value = acquisition.value(x);
  const grids = space.discreteIndices.map((i) => space.gridOf(i));
  const continuousChanged = -1;
  let lastChanged: number | undefined;
  for (let round = 0; round < maxLocalSearchRounds; round++) {
    if (lastChanged === continuousChanged) break;
    const ascent = gradientAscent(acquisition, space, x, value, inverseSquaredLengthscales, tolerance);
    if (ascent.value > value) {
      x = ascent.x;
      value = ascent.value;
      lastChanged = continuousChanged;
    }
    let stop = false;
    for (let j = 0; j < space.discreteIndices.length; j++) {
      const index = space.discreteIndices[j] as number;
      if (lastChanged === index) {
        stop = true;
        break;
      }
      const grid = grids[j] as Float64Array;
      const improved =
        space.isCategorical[index] === true || grid.length <= maxExhaustiveGrid
          ? exhaustiveSearch(acquisition, x, value, index, grid)
          : discreteLineSearch(acquisition, x, value, index, grid);
      if (improved.value > value) {
        x = improved.x;
        value = improved.value;
        lastChanged = index;
      }
    }
    if (stop || lastChanged === undefined) break;
  }
  return { x, value };
}

function gradientAscent(
  acquisition: AcquisitionFunction,
  space: NormalizedSearchSpace,
  start: Float64Array,
  startValue: number,
  inverseSquaredLengthscales: Float64Array,
  tolerance: number,
): AcquisitionOptimum {
  const indices = space.continuousIndices;
  if (indices.length === 0) return { x: start, value: startValue };
  // Optimize z = x / lengthscale: the acquisition then varies about equally in every coordinate.
  const lengthscales = indices.map((i) => 1 / Math.sqrt(inverseSquaredLengthscales[i] as number));
  const point = Float64Array.from(start);
  const fullGradient = new Float64Array(space.dimension);
  const z0 = Float64Array.from(indices, (i, j) => (start[i] as number) / (lengthscales[j] as number));
  const upper = Float64Array.from(lengthscales, (l) => 1 / l);
  const result = minimizeBoxedLbfgs(
    (z, gradient) => {
      indices.forEach((i, j) => {
        point[i] = (z[j] as number) * (lengthscales[j] as number);
      });
      const value = acquisition.valueAndGradient(point, fullGradient);
      indices.forEach((i, j) => {
        gradient[j] = -(fullGradient[i] as number) * (lengthscales[j] as number);
      });
      return -value;
    },
    z0,
    { lower: new Float64Array(indices.length), upper, gradientTolerance: Math.sqrt(tolerance), maxIterations: 200 },
  );
  if (result.iterations > 0 && -result.value > startValue) {
    const x = Float64Array.from(start);
    indices.forEach((i, j) => {
      x[i] = Math.min(1, Math.max(0, (result.x[j] as number) * (lengthscales[j] as number)));
    });
    return { x, value: acquisition.value(x) };
  }
  return { x: start, value: startValue };
}

function exhaustiveSearch(acquisition: AcquisitionFunction, start: Float64Array, startValue: number, index: number, grid: Float64Array): AcquisitionOptimum {
  const candidate = Float64Array.from(start);
  let bestCoordinate = start[index] as number;
  let bestValue = startValue;
  for (const coordinate of grid) {
    if (coordinate === start[index]) continue;
    candidate[index] = coordinate;
    const v = acquisition.value(candidate);
    if (v > bestValue) {
      bestValue = v;
      bestCoordinate = coordinate;
    }
  }
  if (bestValue <= startValue) return { x: start, value: startValue };
  candidate[index] = bestCoordinate;
  return { x: candidate, value: bestValue };
}

/**
 * Golden-section search over the piecewise-linear interpolation of the acquisition between grid
 * points (values cached per grid point), stopped when the bracket is narrower than a quarter of
 * the smallest grid spacing; Optuna runs Brent's method on the same interpolant.
 */
function discreteLineSearch(acquisition: AcquisitionFunction, start: Float64Array, startValue: number, index: number, grid: Float64Array): AcquisitionOptimum {
  const candidate = Float64Array.from(start);
  const cache = new Map<number, number>();
  const nearest = (coordinate: number): number => {
    let best = 0;
    for (let i = 1; i < grid.length; i++) if (Math.abs((grid[i] as number) - coordinate) < Math.abs((grid[best] as number) - coordinate)) best = i;
    return best;
  };
  const current = nearest(start[index] as number);
  cache.set(current, startValue);
  const valueAt = (i: number): number => {
    const cached = cache.get(i);
    if (cached !== undefined) return cached;
    candidate[index] = grid[i] as number;
    const v = acquisition.value(candidate);
    cache.set(i, v);
    return v;
  };
  const interpolated = (coordinate: number): number => {
    let right = 1;
    while (right < grid.length - 1 && (grid[right] as number) < coordinate) right++;
    const left = right - 1;
    const t = (coordinate - (grid[left] as number)) / ((grid[right] as number) - (grid[left] as number));
    return (1 - t) * valueAt(left) + t * valueAt(right);
  };
  let minSpacing = Infinity;
  for (let i = 1; i < grid.length; i++) minSpacing = Math.min(minSpacing, (grid[i] as number) - (grid[i - 1] as number));
  const xtol = minSpacing / 4;
  const ratio = (Math.sqrt(5) - 1) / 2;
  let a = grid[0] as number;
  let b = grid[grid.length - 1] as number;
  let c = b - ratio * (b - a);
  let d = a + ratio * (b - a);
  let fc = interpolated(c);
  let fd = interpolated(d);
  while (b - a > xtol) {
    if (fc > fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - ratio * (b - a);
      fc = interpolated(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + ratio * (b - a);
      fd = interpolated(d);
    }
  }
  const optimum = nearest((a + b) / 2);
  const optimumValue = valueAt(optimum);
  if (optimum === current || optimumValue <= startValue) return { x: start, value: startValue };
  const x = Float64Array.from(start);
  x[index] = grid[optimum] as number;
  return { x, value: optimumValue };
}
