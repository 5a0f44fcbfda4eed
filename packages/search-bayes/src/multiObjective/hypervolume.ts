import { paretoFrontIndices } from '@open-autoglm/core';

/**
 * The hypervolume (Lebesgue measure) dominated by `points` and bounded by `reference`, every
 * objective minimized. Points that do not dominate the reference contribute nothing. Two
 * objectives take a sort and a sweep; more use the WFG algorithm (While, Bradstreet and Barone
 * 2012): the sum of exclusive volumes, each computed on the points limited to it.
 */
export function hypervolume(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const inside = points.filter((point) => point.every((value, i) => value < (reference[i] ?? -Infinity)));
  if (inside.length === 0) return 0;
  if (reference.length === 2) return hypervolume2d(inside, reference);
  return wfg(nonDominated(inside), reference);
}

function hypervolume2d(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const sorted = [...points].sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0));
  let volume = 0;
  let ceiling = reference[1] ?? 0;
  for (const point of sorted) {
    const y = point[1] ?? 0;
    if (y >= ceiling) continue;
    volume += ((reference[0] ?? 0) - (point[0] ?? 0)) * (ceiling - y);
    ceiling = y;
  }
  return volume;
}

function boxVolume(point: readonly number[], reference: readonly number[]): number {
  let volume = 1;
  for (let i = 0; i < reference.length; i++) volume *= (reference[i] ?? 0) - (point[i] ?? 0);
  return volume;
}

function nonDominated(points: readonly (readonly number[])[]): (readonly number[])[] {
  const front = paretoFrontIndices(points).map((i) => points[i] ?? []);
  // Equal points dominate each other nowhere; keep one of each.
  const seen = new Set<string>();
  return front.filter((point) => {
    const key = point.join(',');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function wfg(points: readonly (readonly number[])[], reference: readonly number[]): number {
  if (points.length === 0) return 0;
  if (points.length === 1) return boxVolume(points[0] ?? [], reference);
  if (reference.length === 2) return hypervolume2d(points, reference);
  // Sorting by the first objective keeps the limited sets small.
  const sorted = [...points].sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
  let volume = 0;
  for (let i = 0; i < sorted.length; i++) {
    const point = sorted[i] ?? [];
    const limited = sorted.slice(i + 1).map((other) => other.map((value, k) => Math.max(value, point[k] ?? 0)));
    volume += boxVolume(point, reference) - wfg(nonDominated(limited), reference);
  }
  return volume;
}
