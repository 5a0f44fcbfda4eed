import { ConfigError, type LayerFeatures, type ParameterDescriptor, type ParameterDistribution, type ParameterValue, type SearchSpace, type TrialParams } from '@open-autoglm/core';

/**
 * Planning runs as a generator that yields each plan whose cost it needs and receives the cost
 * back: the same code then serves asynchronous cost models (the pipeline's `estimate`) and
 * synchronous ones (no budget, the benchmark's synthetic problem). See `drivePlanning`.
 */
export type Planning<T> = Generator<TrialParams, T, number>;

/** The budget every plan must meet (AMC's resource constraint), in the cost model's units. */
export interface PlanBudget {
  /** Cost of the uncompressed model (for the state's "removed so far" and "still to remove"). */
  readonly baseline: number;
  /** A plan is within budget when its cost is <= limit. */
  readonly limit: number;
}

/**
 * What the agent decides at one step. For a continuous step (`choiceCount` undefined) it returns
 * a position in [0, 1], 0 the least compressive value and 1 the most; for a step with
 * `choiceCount` choices it returns an index, 0 the least compressive choice.
 */
export interface StepPolicy {
  decide(state: readonly number[], choiceCount: number | undefined): number;
}

/** One decision of an episode, as the agent learns from it (after budget clipping). */
export interface StepDecision {
  readonly state: readonly number[];
  /** The executed action in [0, 1] (0 least compressive). */
  readonly position: number;
  /** The executed choice for a step with choices. */
  readonly index?: number;
  /**
   * The choice the policy proposed, before clipping. The clipping is part of the environment, so
   * a policy-gradient agent credits the proposal (REINFORCE), while a critic learns the value of
   * the executed action (DDPG, as AMC does).
   */
  readonly proposedIndex?: number;
  readonly choiceCount?: number;
}

/** One episode: a whole plan (every parameter of the space) and the decisions that made it. */
export interface EpisodePlan {
  readonly params: TrialParams;
  readonly decisions: readonly StepDecision[];
  /** The plan's cost, when planned against a budget (always <= its limit). */
  readonly cost: number | undefined;
}

/** How one step's action maps to values, ordered from least to most compressive. */
type StepActions =
  | { readonly kind: 'choices'; readonly values: readonly ParameterValue[] }
  | { readonly kind: 'interval'; readonly from: number; readonly to: number; readonly log: boolean };

/** The state vector's entries, in order (AMC's layer embedding plus the budget and the previous action). */
export const stateFeatureNames = [
  'index',
  'opType',
  'inChannels',
  'outChannels',
  'kernel',
  'stride',
  'macsShare',
  'paramsShare',
  'removedSoFar',
  'stillToRemove',
  'previousAction',
] as const;

/** Size of the state vector the agents see. */
export const stateSize = stateFeatureNames.length;

// Bisection on a continuous step stops at this width of the position interval.
const bisectionTolerance = 1e-4;

export interface EpisodePlannerOptions {
  /** Budget to keep every plan within; without it actions are never clipped. */
  readonly budget?: PlanBudget;
  /**
   * Discretize continuous steps into this many evenly spaced values (for agents over discrete
   * choices, REINFORCE); without it they stay continuous (DDPG).
   */
  readonly continuousBins?: number;
}

/**
 * The RL environment: one episode walks the parameters of the search space in order (the
 * pipeline lists each pass's per-layer parameters in topological order) and asks the policy for
 * each one, given a normalized embedding of its layer and of the budget. Actions are clipped as
 * in AMC so that every plan meets the budget: before each decision the planner finds, by
 * bisection on the cost, the least compressive value that still lets the budget be met with
 * every later parameter at its most compressive value, and raises the action to it.
 */
export class EpisodePlanner {
  readonly steps: readonly ParameterDescriptor[];
  private readonly staticStates: readonly (readonly number[])[];
  private actions: readonly StepActions[] | undefined;

  constructor(
    space: SearchSpace,
    private readonly options: EpisodePlannerOptions = {},
  ) {
    if (space.length === 0) throw new ConfigError('search-rl needs a non-empty search space: the passes expose no parameter to decide.');
    const seen = new Set<string>();
    for (const descriptor of space) {
      if (seen.has(descriptor.name)) throw new ConfigError(`search-rl: parameter "${descriptor.name}" appears twice in the search space; names must be unique.`);
      seen.add(descriptor.name);
    }
    const bins = options.continuousBins;
    if (bins !== undefined && (!Number.isInteger(bins) || bins < 2)) throw new ConfigError(`search-rl: continuousBins must be an integer >= 2, not ${bins}.`);
    this.steps = space;
    this.staticStates = layerEmbeddings(space.map((descriptor) => descriptor.features ?? {}));
  }

  /** The parameters and their distributions, as the study records them. */
  get distributions(): Readonly<Record<string, ParameterDistribution>> {
    return Object.fromEntries(this.steps.map((step) => [step.name, step.distribution]));
  }

  /** How many choices each step offers (undefined for a continuous one). */
  get choiceCounts(): readonly (number | undefined)[] {
    return this.steps.map(({ distribution: d }) => {
      if (d.kind === 'categorical') return d.choices.length;
      if (d.kind === 'int' || d.step !== undefined) return numericGrid(d).length;
      return this.options.continuousBins;
    });
  }

  /** Plans one episode; yields the plans whose cost it needs (only when there is a budget). */
  *plan(policy: StepPolicy): Planning<EpisodePlan> {
    const actions = this.actions ?? (this.actions = yield* this.orderActions());
    const budget = this.options.budget;
    const decided: Record<string, ParameterValue> = {};
    if (budget !== undefined) {
      const leastCost = yield this.extremes(decided, 0, 1);
      if (!(leastCost <= budget.limit)) {
        throw new ConfigError(
          `search-rl: the budget (${budget.limit}) cannot be met: even the most compressive value of every parameter costs ${leastCost}. Raise the budget or widen the parameters' ranges.`,
        );
      }
    }
    const decisions: StepDecision[] = [];
    let previousPosition = 0;
    for (let i = 0; i < this.steps.length; i++) {
      const step = this.steps[i] as ParameterDescriptor;
      const stepActions = actions[i] as StepActions;
      let removedSoFar = 0;
      let stillToRemove = 0;
      if (budget !== undefined) {
        const uncompressedRest = yield this.extremes(decided, i, 0);
        removedSoFar = (budget.baseline - uncompressedRest) / budget.baseline;
        stillToRemove = Math.max(0, uncompressedRest - budget.limit) / budget.baseline;
      }
      const state = [...(this.staticStates[i] as readonly number[]), removedSoFar, stillToRemove, previousPosition];
      if (stepActions.kind === 'choices') {
        const count = stepActions.values.length;
        const proposedIndex = clampIndex(policy.decide(state, count), count);
        let index = proposedIndex;
        if (budget !== undefined) {
          const lowest = yield* this.lowestFeasibleIndex(decided, i, stepActions.values, budget.limit);
          if (index < lowest) index = lowest;
          else if (index > lowest && (yield this.withRest(decided, i, stepActions.values[index] as ParameterValue)) > budget.limit) index = lowest;
        }
        decided[step.name] = stepActions.values[index] as ParameterValue;
        previousPosition = count > 1 ? index / (count - 1) : 0;
        decisions.push({ state, position: previousPosition, index, proposedIndex, choiceCount: count });
      } else {
        let position = Math.min(1, Math.max(0, policy.decide(state, undefined)));
        if (Number.isNaN(position)) position = 0;
        if (budget !== undefined) {
          const lowest = yield* this.lowestFeasiblePosition(decided, i, stepActions, budget.limit);
          if (position < lowest) position = lowest;
          else if (position > lowest && (yield this.withRest(decided, i, intervalValue(stepActions, position))) > budget.limit) position = lowest;
        }
        decided[step.name] = intervalValue(stepActions, position);
        previousPosition = position;
        decisions.push({ state, position });
      }
    }
    const cost = budget === undefined ? undefined : yield { ...decided };
    if (budget !== undefined && !((cost as number) <= budget.limit)) {
      // Only a cost model that answers differently for the same plan gets here.
      throw new ConfigError(`search-rl: the plan's cost changed between two estimates (${cost} > ${budget.limit}); the cost model must be deterministic.`);
    }
    return { params: decided, decisions, cost };
  }

  /** `decided`, then step `from` onwards all at position `position` (0 least, 1 most compressive). */
  private extremes(decided: TrialParams, from: number, position: 0 | 1): TrialParams {
    const plan: Record<string, ParameterValue> = { ...decided };
    const actions = this.actions as readonly StepActions[];
    for (let i = from; i < this.steps.length; i++) plan[(this.steps[i] as ParameterDescriptor).name] = extremeValue(actions[i] as StepActions, position);
    return plan;
  }

  /** `decided`, step `index` at `value`, every later step at its most compressive value. */
  private withRest(decided: TrialParams, index: number, value: ParameterValue): TrialParams {
    return { ...this.extremes(decided, index + 1, 1), [(this.steps[index] as ParameterDescriptor).name]: value };
  }

  private *lowestFeasibleIndex(decided: TrialParams, index: number, values: readonly ParameterValue[], limit: number): Planning<number> {
    if ((yield this.withRest(decided, index, values[0] as ParameterValue)) <= limit) return 0;
    // values[last] is feasible: the previous steps kept the plan with every later step at its most compressive value within budget.
    let infeasible = 0;
    let feasible = values.length - 1;
    while (feasible - infeasible > 1) {
      const middle = (infeasible + feasible) >> 1;
      if ((yield this.withRest(decided, index, values[middle] as ParameterValue)) <= limit) feasible = middle;
      else infeasible = middle;
    }
    return feasible;
  }

  private *lowestFeasiblePosition(decided: TrialParams, index: number, actions: StepActions & { kind: 'interval' }, limit: number): Planning<number> {
    if ((yield this.withRest(decided, index, intervalValue(actions, 0))) <= limit) return 0;
    let infeasible = 0;
    let feasible = 1;
    while (feasible - infeasible > bisectionTolerance) {
      const middle = (infeasible + feasible) / 2;
      if ((yield this.withRest(decided, index, intervalValue(actions, middle))) <= limit) feasible = middle;
      else infeasible = middle;
    }
    return feasible;
  }

  /**
   * Orders each step's values from least to most compressive, by their cost with every other
   * parameter at its reference value (the low end, the first choice): numeric ranges by
   * comparing their two ends, choices by sorting their costs. Without a budget, numeric ranges
   * go from low to high and choices keep their order.
   */
  private *orderActions(): Planning<StepActions[]> {
    const reference: Record<string, ParameterValue> = Object.fromEntries(this.steps.map((step) => [step.name, referenceValue(step.distribution)]));
    const result: StepActions[] = [];
    for (const step of this.steps) {
      const d = step.distribution;
      const costOf = (value: ParameterValue): TrialParams => ({ ...reference, [step.name]: value });
      if (d.kind === 'categorical') {
        let values = [...d.choices];
        if (this.options.budget !== undefined) {
          const costs: number[] = [];
          for (const value of values) costs.push(yield costOf(value));
          // Stable: choices of equal cost keep the pass's order.
          values = values.map((value, i) => ({ value, i, cost: costs[i] as number })).sort((a, b) => b.cost - a.cost || a.i - b.i).map((entry) => entry.value);
        }
        result.push({ kind: 'choices', values });
        continue;
      }
      let ascending = true;
      if (this.options.budget !== undefined && d.low !== d.high) ascending = (yield costOf(d.high)) <= (yield costOf(d.low));
      if (d.kind === 'int' || d.step !== undefined) {
        const grid = numericGrid(d);
        result.push({ kind: 'choices', values: ascending ? grid : grid.reverse() });
      } else {
        const interval = { kind: 'interval' as const, from: ascending ? d.low : d.high, to: ascending ? d.high : d.low, log: d.log === true };
        const bins = this.options.continuousBins;
        result.push(bins === undefined ? interval : { kind: 'choices', values: Array.from({ length: bins }, (_, k) => intervalValue(interval, k / (bins - 1))) });
      }
    }
    return result;
  }
}

/** Runs a planning against an asynchronous (or synchronous) cost estimate. */
export async function drivePlanning<T>(planning: Planning<T>, estimate: (plan: TrialParams) => Promise<number> | number): Promise<T> {
  let next = planning.next();
  while (next.done !== true) next = planning.next(await estimate(next.value));
  return next.value;
}

/** Runs a planning against a synchronous cost estimate. */
export function drivePlanningSync<T>(planning: Planning<T>, estimate: (plan: TrialParams) => number): T {
  let next = planning.next();
  while (next.done !== true) next = planning.next(estimate(next.value));
  return next.value;
}

function referenceValue(distribution: ParameterDistribution): ParameterValue {
  return distribution.kind === 'categorical' ? (distribution.choices[0] as ParameterValue) : distribution.low;
}

function extremeValue(actions: StepActions, position: 0 | 1): ParameterValue {
  if (actions.kind === 'interval') return position === 0 ? actions.from : actions.to;
  return actions.values[position === 0 ? 0 : actions.values.length - 1] as ParameterValue;
}

function intervalValue(actions: { readonly from: number; readonly to: number; readonly log: boolean }, position: number): number {
  if (position <= 0) return actions.from;
  if (position >= 1) return actions.to;
  if (actions.log) return Math.exp(Math.log(actions.from) + position * (Math.log(actions.to) - Math.log(actions.from)));
  return actions.from + position * (actions.to - actions.from);
}

function numericGrid(distribution: ParameterDistribution & { kind: 'int' | 'float' }): ParameterValue[] {
  const { low, high } = distribution;
  const step = distribution.step ?? 1;
  if (distribution.kind === 'int' && distribution.log === true) {
    return Array.from({ length: high - low + 1 }, (_, k) => low + k);
  }
  const count = Math.floor((high - low) / step + 1e-9) + 1;
  // low + k * step, rounded to the step's decimals so that 0.1 + 2 * 0.05 is stored as 0.2.
  const decimals = Math.min(12, Math.max(0, -Math.floor(Math.log10(step)) + 6));
  return Array.from({ length: count }, (_, k) => (k === count - 1 ? high : Number((low + k * step).toFixed(decimals))));
}

function clampIndex(index: number, count: number): number {
  if (!Number.isFinite(index)) return 0;
  return Math.min(count - 1, Math.max(0, Math.round(index)));
}

/**
 * The static part of each step's state: AMC's layer embedding (index, op type, channels, kernel,
 * stride, MACs and params shares), each column scaled to [0, 1] over the episode's steps (a
 * column that is constant, or missing, is 0).
 */
function layerEmbeddings(features: readonly LayerFeatures[]): number[][] {
  const number = (f: LayerFeatures, key: string): number => (typeof f[key] === 'number' ? (f[key] as number) : 0);
  const opTypes = [...new Set(features.map((f) => (typeof f.opType === 'string' ? f.opType : '')))].sort();
  const totalMacs = features.reduce((sum, f) => sum + number(f, 'macs'), 0);
  const totalParams = features.reduce((sum, f) => sum + number(f, 'params'), 0);
  const raw = features.map((f, i) => [
    typeof f.index === 'number' ? f.index : i,
    opTypes.indexOf(typeof f.opType === 'string' ? f.opType : ''),
    number(f, 'inChannels'),
    number(f, 'outChannels'),
    number(f, 'kernel'),
    number(f, 'stride'),
    totalMacs > 0 ? number(f, 'macs') / totalMacs : 0,
    totalParams > 0 ? number(f, 'params') / totalParams : 0,
  ]);
  const columns = raw[0]?.length ?? 0;
  for (let c = 0; c < columns; c++) {
    const values = raw.map((row) => row[c] as number);
    const min = Math.min(...values);
    const range = Math.max(...values) - min;
    for (const row of raw) row[c] = range > 0 ? ((row[c] as number) - min) / range : 0;
  }
  return raw;
}
