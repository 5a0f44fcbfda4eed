import { isSingleDistribution, sameDistribution, type FrozenTrial, type ParameterDistribution, type RelativeSearchSpace } from '@open-autoglm/core';

/**
 * The parameters every given trial has, with the same distribution in all of them, minus those
 * with a single possible value (Optuna's `IntersectionSearchSpace`), sorted by name. It is what
 * joint samplers model; other parameters are sampled independently.
 */
export function intersectionSearchSpace(trials: readonly FrozenTrial[]): RelativeSearchSpace {
  let space: Map<string, ParameterDistribution> | undefined;
  for (const trial of trials) {
    if (space === undefined) {
      space = new Map(Object.entries(trial.distributions));
      continue;
    }
    for (const [name, distribution] of space) {
      const other = trial.distributions[name];
      if (other === undefined || !sameDistribution(distribution, other)) space.delete(name);
    }
  }
  const result: Record<string, ParameterDistribution> = {};
  for (const name of [...(space?.keys() ?? [])].sort()) {
    const distribution = space?.get(name) as ParameterDistribution;
    if (!isSingleDistribution(distribution)) result[name] = distribution;
  }
  return result;
}
