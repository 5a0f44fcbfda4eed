import { ConfigError } from '@open-autoglm/core';
import type { DependencyAnalysis, DependencyGroup } from './analyzeDependencies.js';

/** How many units to remove, and where. */
export interface PruningRatios {
  /**
   * Fraction of the units to remove, in [0, 1). Without `perLayer` it is global: units are
   * ranked by importance across every prunable group (normalized by each group's mean) and the
   * lowest `ratio` of all of them go. Default 0.
   */
  readonly ratio?: number;
  /** Fractions per group (by group name), each in [0, 1); listed groups leave the global ranking. */
  readonly perLayer?: Readonly<Record<string, number>>;
  /**
   * Kept channels per group (units x unit size) are rounded to the nearest multiple of this;
   * default 1. onnxruntime's convolutions work on blocks of 8 or 16 channels, so odd widths
   * waste most of the saving (see the package README).
   */
  readonly roundTo?: number;
  /** Units every group keeps at least; default 1. */
  readonly minUnits?: number;
  /** Groups (by group name or any of their layer names) never pruned. */
  readonly protect?: readonly string[];
}

/** The units each group keeps, by group name (groups that keep everything may be absent). */
export type PruningPlan = ReadonlyMap<string, readonly number[]>;

function checkRatio(value: number, what: string): void {
  if (!Number.isFinite(value) || value < 0 || value >= 1) {
    throw new ConfigError(`${what} must be a number in [0, 1) (the fraction of channels to remove), got ${String(value)}.`);
  }
}

/** The groups that can be pruned under `ratios` (not frozen, not protected, at least 2 units). */
export function prunableGroups(analysis: DependencyAnalysis, protect: readonly string[] = []): DependencyGroup[] {
  return analysis.groups.filter(
    (g) => g.frozenReasons.length === 0 && g.units >= 2 && !protect.some((name) => name === g.name || g.layers.includes(name)),
  );
}

/** Checks ratios against the analysis: ConfigError for values out of range and unknown group names. */
export function validateRatios(analysis: DependencyAnalysis, ratios: PruningRatios): void {
  if (ratios.ratio !== undefined) checkRatio(ratios.ratio, 'The pruning ratio');
  const roundTo = ratios.roundTo ?? 1;
  if (!Number.isInteger(roundTo) || roundTo < 1) throw new ConfigError(`roundTo must be a whole number >= 1, got ${String(roundTo)}.`);
  const minUnits = ratios.minUnits ?? 1;
  if (!Number.isInteger(minUnits) || minUnits < 1) throw new ConfigError(`minUnits must be a whole number >= 1, got ${String(minUnits)}.`);
  const byName = new Map(analysis.groups.map((g) => [g.name, g]));
  const unknown = Object.keys(ratios.perLayer ?? {}).filter((name) => !byName.has(name));
  if (unknown.length > 0) {
    const known = prunableGroups(analysis, ratios.protect).map((g) => `"${g.name}"`);
    throw new ConfigError(
      `The per-layer ratios name group(s) the model does not have: ${unknown.map((n) => `"${n}"`).join(', ')}. ` +
        `Prunable groups are named after their first layer: ${known.length > 0 ? known.join(', ') : '(none)'}.`,
    );
  }
  for (const [name, value] of Object.entries(ratios.perLayer ?? {})) {
    checkRatio(value, `The per-layer ratio of "${name}"`);
    const group = byName.get(name) as DependencyGroup;
    if (value > 0 && group.frozenReasons.length > 0) {
      throw new ConfigError(`Group "${name}" cannot be pruned: ${group.frozenReasons.join('; ')}. Remove it from the per-layer ratios.`);
    }
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * True when `roundTo` and the `minUnits` floor leave the group a width to shrink to (a 6-channel
 * layer at roundTo 8 has none, nor a 16-channel one with a floor of 16).
 */
export function canShrink(group: DependencyGroup, roundTo = 1, minUnits = 1): boolean {
  return roundTo / gcd(roundTo, group.unitSize) < group.units && minUnits < group.units;
}

/**
 * Kept units for a group that removes `removed` of its units, within minUnits and with a kept
 * channel count (units x unitSize) that is a multiple of roundTo: a head of 32 channels is
 * always a multiple of 8, a single channel rounds to 8 units.
 */
function keptCount(group: DependencyGroup, removed: number, roundTo: number, minUnits: number): number {
  const units = group.units;
  const step = roundTo / gcd(roundTo, group.unitSize);
  let kept = units - removed;
  if (step > 1) kept = Math.max(step, Math.round(kept / step) * step);
  return Math.min(units, Math.max(kept, Math.min(minUnits, units)));
}

/**
 * How many units each group keeps (group name -> count), which is all that params/MACs depend on.
 * `importance` is needed only for the global ranking (groups not in `perLayer`).
 */
export function planKeptCounts(
  analysis: DependencyAnalysis,
  ratios: PruningRatios,
  importance: (group: DependencyGroup) => Float64Array,
): Map<string, number> {
  validateRatios(analysis, ratios);
  const roundTo = ratios.roundTo ?? 1;
  const minUnits = ratios.minUnits ?? 1;
  const counts = new Map<string, number>();
  const groups = prunableGroups(analysis, ratios.protect);
  const perLayer = ratios.perLayer ?? {};
  const globalGroups: DependencyGroup[] = [];
  for (const group of groups) {
    const ratio = perLayer[group.name];
    if (ratio !== undefined) counts.set(group.name, keptCount(group, Math.floor(ratio * group.units + 1e-9), roundTo, minUnits));
    // Groups that rounding or the floor keeps whole would absorb part of the global ratio without shrinking.
    else if (canShrink(group, roundTo, minUnits)) globalGroups.push(group);
  }
  const ratio = ratios.ratio ?? 0;
  if (ratio > 0 && globalGroups.length > 0) {
    // Rank every unit of every remaining group on importance relative to its group's mean.
    const ranked: Array<{ group: string; score: number }> = [];
    for (const group of globalGroups) {
      const scores = importance(group);
      const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
      for (const score of scores) ranked.push({ group: group.name, score: mean > 0 ? score / mean : 0 });
    }
    ranked.sort((a, b) => a.score - b.score);
    const removed = new Map<string, number>();
    const target = Math.floor(ratio * ranked.length + 1e-9);
    for (const entry of ranked.slice(0, target)) removed.set(entry.group, (removed.get(entry.group) ?? 0) + 1);
    for (const group of globalGroups) counts.set(group.name, keptCount(group, removed.get(group.name) ?? 0, roundTo, minUnits));
  }
  return counts;
}

/** The units each group keeps: its `count` most important, in their original order. */
export function selectKeptUnits(counts: ReadonlyMap<string, number>, analysis: DependencyAnalysis, importance: (group: DependencyGroup) => Float64Array): PruningPlan {
  const plan = new Map<string, number[]>();
  for (const group of analysis.groups) {
    const count = counts.get(group.name);
    if (count === undefined || count >= group.units) continue;
    const scores = importance(group);
    const order = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    plan.set(group.name, order.slice(0, count).sort((a, b) => a - b));
  }
  return plan;
}
