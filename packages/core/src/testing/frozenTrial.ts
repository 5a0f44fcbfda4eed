import type { FrozenTrial, TrialState } from '../contracts/FrozenTrial.js';

/**
 * A finished trial with only what samplers, pruners and the pipeline rank by — its values,
 * constraints and state — for their tests: no parameters, attributes or timestamps.
 */
export function frozenTrial(
  number: number,
  values: readonly number[] | undefined,
  constraints?: readonly number[],
  state: TrialState = 'complete',
): FrozenTrial {
  return {
    number,
    trialId: number,
    state,
    values,
    params: {},
    distributions: {},
    intermediateValues: new Map(),
    userAttrs: {},
    systemAttrs: {},
    constraints,
    datetimeStart: undefined,
    datetimeComplete: undefined,
  };
}
