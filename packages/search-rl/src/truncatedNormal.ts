import type { SeededRandom } from '@open-autoglm/core';

/**
 * A draw from Normal(mean, sd) truncated to [low, high], by rejection: AMC's exploration noise
 * around the actor's action. When the mass inside is tiny (a mean far outside the interval)
 * it gives up after 64 draws and returns the nearest bound.
 */
export function truncatedNormal(random: SeededRandom, mean: number, sd: number, low: number, high: number): number {
  if (sd > 0) {
    for (let attempt = 0; attempt < 64; attempt++) {
      const value = mean + sd * random.nextNormal();
      if (value >= low && value <= high) return value;
    }
  }
  return Math.min(high, Math.max(low, mean));
}
