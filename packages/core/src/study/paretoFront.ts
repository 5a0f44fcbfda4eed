/**
 * Pareto dominance over loss vectors (every objective minimized; callers flip maximized ones).
 */

/** True when `a` is no worse than `b` in every objective and better in at least one. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let strictlyBetter = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? Number.NaN;
    const y = b[i] ?? Number.NaN;
    if (x > y) return false;
    if (x < y) strictlyBetter = true;
  }
  return strictlyBetter;
}

/** The indices of the points no other point dominates, in input order. */
export function paretoFrontIndices(points: readonly (readonly number[])[]): number[] {
  const front: number[] = [];
  for (let i = 0; i < points.length; i++) {
    const point = points[i] ?? [];
    if (!points.some((other, j) => j !== i && dominates(other, point))) front.push(i);
  }
  return front;
}

/**
 * The non-domination rank of each point: 0 for the Pareto front, 1 for the front once rank 0 is
 * removed, and so on (fast non-dominated sorting, Deb et al. 2002).
 */
export function nonDominationRanks(points: readonly (readonly number[])[]): number[] {
  const n = points.length;
  const dominatedCount = new Array<number>(n).fill(0);
  const dominatedBy: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = points[i] ?? [];
      const b = points[j] ?? [];
      if (dominates(a, b)) {
        dominatedBy[i]?.push(j);
        dominatedCount[j] = (dominatedCount[j] ?? 0) + 1;
      } else if (dominates(b, a)) {
        dominatedBy[j]?.push(i);
        dominatedCount[i] = (dominatedCount[i] ?? 0) + 1;
      }
    }
  }
  const ranks = new Array<number>(n).fill(-1);
  let current = dominatedCount.flatMap((count, i) => (count === 0 ? [i] : []));
  for (let rank = 0; current.length > 0; rank++) {
    const next: number[] = [];
    for (const i of current) {
      ranks[i] = rank;
      for (const j of dominatedBy[i] ?? []) {
        dominatedCount[j] = (dominatedCount[j] ?? 0) - 1;
        if (dominatedCount[j] === 0) next.push(j);
      }
    }
    current = next;
  }
  return ranks;
}
