/**
 * A fixed-size histogram over a fixed interval [low, high]: memory is `bins` counters whatever
 * the number of values added. Values outside the interval land in the first or last bin.
 */
export class Histogram {
  readonly counts: Float64Array;
  readonly width: number;
  private readonly inverseWidth: number;
  total = 0;
  /** NaN values seen: they fall in no bin and are not counted in `total`. */
  nan = 0;

  constructor(
    readonly low: number,
    readonly high: number,
    readonly bins: number,
  ) {
    if (!(high >= low) || !Number.isInteger(bins) || bins < 1) {
      throw new RangeError(`Histogram needs low <= high and a whole number of bins, got [${low}, ${high}] with ${bins}.`);
    }
    this.counts = new Float64Array(bins);
    // A zero-width interval (a constant tensor) still needs a positive bin width.
    this.width = high > low ? (high - low) / bins : 1;
    this.inverseWidth = 1 / this.width;
  }

  /** Counts every value of `values` (or their magnitudes with `absolute`); NaN goes to `nan`. */
  add(values: ArrayLike<number>, absolute = false): void {
    const { counts, low, inverseWidth } = this;
    const last = this.bins - 1;
    let nan = 0;
    for (let i = 0; i < values.length; i++) {
      const v = absolute ? Math.abs(values[i] as number) : (values[i] as number);
      let bin = Math.floor((v - low) * inverseWidth);
      if (bin < 0) bin = 0;
      else if (bin > last) bin = last;
      else if (Number.isNaN(bin)) {
        nan++;
        continue;
      }
      counts[bin] = (counts[bin] as number) + 1;
    }
    this.nan += nan;
    this.total += values.length - nan;
  }

  /** Lower edge of bin `i` (i = bins gives the upper edge of the last bin). */
  edge(i: number): number {
    return this.low + i * this.width;
  }

  /** Centre of bin `i`. */
  center(i: number): number {
    return this.low + (i + 0.5) * this.width;
  }
}
