import { hypervolume } from './hypervolume.js';

/**
 * Picks `subsetSize` of `points` that together dominate a large hypervolume (the hypervolume
 * subset selection problem), greedily as Optuna does: each step takes the point whose exclusive
 * contribution to the points taken so far is largest. Returns positions in `points`.
 */
export function solveHssp(points: readonly (readonly number[])[], subsetSize: number, reference: readonly number[]): number[] {
  const selected: number[] = [];
  const selectedPoints: (readonly number[])[] = [];
  let selectedVolume = 0;
  const taken = new Array<boolean>(points.length).fill(false);
  while (selected.length < Math.min(subsetSize, points.length)) {
    let best = -1;
    let bestContribution = -Infinity;
    for (let i = 0; i < points.length; i++) {
      if (taken[i] === true) continue;
      const contribution = hypervolume([...selectedPoints, points[i] ?? []], reference) - selectedVolume;
      if (contribution > bestContribution) {
        bestContribution = contribution;
        best = i;
      }
    }
    taken[best] = true;
    selected.push(best);
    selectedPoints.push(points[best] ?? []);
    selectedVolume = hypervolume(selectedPoints, reference);
  }
  return selected;
}
