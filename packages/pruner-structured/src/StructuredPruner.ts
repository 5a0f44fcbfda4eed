import { ConfigError } from '@open-autoglm/core';
import { countModelStats, OnnxModel, removeDeadNodes } from '@open-autoglm/onnx';
import { analyzeDependencies, type DependencyAnalysis, type DependencyGroup } from './analyzeDependencies.js';
import { applyPruningPlan } from './applyPruningPlan.js';
import { applyBiasCompensation, type BiasCompensationTarget, biasCompensationTargets } from './compensateBias.js';
import { computeImportance, type ImportanceCriterion, type ParameterGradients } from './computeImportance.js';
import { planKeptCounts, type PruningPlan, type PruningRatios, prunableGroups, selectKeptUnits } from './planPruning.js';

export interface StructuredPruningOptions extends PruningRatios {
  /** How units are ranked; default `l1`. */
  readonly criterion?: ImportanceCriterion;
  /** Seed of the `random` criterion; default 0. */
  readonly seed?: number;
  /** dL/dw per parameter tensor, required by the `taylor` criterion (see `computeParameterGradients`). */
  readonly gradients?: ParameterGradients;
  /**
   * Mean input features of the layers that lose inputs (see `biasCompensationTargets` and
   * `measureInputMeans`): when given, their average contribution is folded into the biases.
   */
  readonly inputMeans?: ReadonlyMap<string, Float64Array>;
}

/** Params and MACs per sample. */
export interface ModelSize {
  readonly params: number;
  readonly macs: number;
}

/** One row of the report's per-group table. */
export interface GroupPruningReport {
  readonly group: string;
  readonly kind: DependencyGroup['kind'];
  readonly layers: readonly string[];
  readonly unitsBefore: number;
  readonly unitsAfter: number;
  /** Channels per unit (the head size for heads). */
  readonly unitSize: number;
  /** Mean importance of the removed and of the kept units (undefined when nothing was removed). */
  readonly importanceRemoved: number | undefined;
  readonly importanceKept: number | undefined;
  readonly frozen: boolean;
  readonly reasons: readonly string[];
}

export interface StructuredPruningReport {
  readonly criterion: ImportanceCriterion;
  /** Layers whose bias absorbed the mean contribution of their removed inputs. */
  readonly compensatedBiases: number;
  readonly original: ModelSize;
  /** Predicted from the plan before the model was rewritten. */
  readonly predicted: ModelSize;
  /** Counted on the pruned model (`countModelStats`). */
  readonly actual: ModelSize;
  readonly groups: readonly GroupPruningReport[];
}

export interface StructuredPruningResult {
  readonly model: OnnxModel;
  readonly report: StructuredPruningReport;
  /** The units each pruned group kept (for `reconstructConsumers`). */
  readonly plan: PruningPlan;
}

/**
 * Structured pruning of one ONNX model: the dependency analysis is made once, then plans can be
 * predicted (params/MACs, without building anything) and applied as often as needed.
 */
export class StructuredPruner {
  readonly analysis: DependencyAnalysis;
  private readonly importanceCache = new Map<string, Float64Array>();

  constructor(readonly model: OnnxModel) {
    this.analysis = analyzeDependencies(model.proto);
  }

  /** The groups that can be pruned (not frozen, at least two units, not in `protect`). */
  prunableGroups(protect: readonly string[] = []): DependencyGroup[] {
    return prunableGroups(this.analysis, protect);
  }

  /** Importance of every unit of a group (higher = kept first), cached per criterion and seed. */
  importance(group: DependencyGroup, options: StructuredPruningOptions = {}): Float64Array {
    const criterion = options.criterion ?? 'l1';
    if (criterion === 'taylor' && options.gradients === undefined) {
      throw new ConfigError(
        'The taylor criterion needs gradients of the loss: give calibration data with labels (--calib with --labels), or choose l1, l2, fpgm, bn or random.',
      );
    }
    const key = `${criterion}:${options.seed ?? 0}:${group.name}`;
    let scores = criterion === 'taylor' ? undefined : this.importanceCache.get(key);
    if (scores === undefined) {
      scores = computeImportance(this.model.graph, group, criterion, { seed: options.seed ?? 0, ...(options.gradients === undefined ? {} : { gradients: options.gradients }) });
      if (criterion !== 'taylor') this.importanceCache.set(key, scores);
    }
    return scores;
  }

  /** The layers whose biases can absorb the removed inputs under `options` (for `inputMeans`). */
  biasCompensationTargets(options: StructuredPruningOptions): BiasCompensationTarget[] {
    return biasCompensationTargets(this.model.graph, this.analysis, this.plan(options));
  }

  /** The weight tensors the Taylor criterion needs gradients for (every producing or reading weight). */
  taylorParameters(): string[] {
    const names = new Set<string>();
    for (const group of this.analysis.groups) {
      for (const member of group.members) {
        if (member.kind === 'tensor' && (member.role === 'in' || member.role === 'out') && this.model.graph.getInitializer(member.tensor) !== undefined) {
          names.add(member.tensor);
        }
      }
    }
    return [...names];
  }

  /** How many units each pruned group keeps (what params/MACs depend on). */
  keptCounts(options: StructuredPruningOptions): Map<string, number> {
    this.requirePrunable(options.protect);
    return planKeptCounts(this.analysis, options, (g) => this.importance(g, options));
  }

  /** Params and MACs of the model `prune(options)` would return, without building it. */
  predict(options: StructuredPruningOptions): ModelSize {
    return this.analysis.predict(this.keptCounts(options));
  }

  /** Which units of which groups are kept. */
  plan(options: StructuredPruningOptions): PruningPlan {
    return selectKeptUnits(this.keptCounts(options), this.analysis, (g) => this.importance(g, options));
  }

  /** A pruned copy of the model, with the per-group report. The input model is not modified. */
  prune(options: StructuredPruningOptions): StructuredPruningResult {
    const plan = this.plan(options);
    const kept = new Map([...plan].map(([name, units]) => [name, units.length]));
    const predicted = this.analysis.predict(kept);
    const pruned = this.model.clone();
    let compensatedBiases = 0;
    if (options.inputMeans !== undefined) {
      compensatedBiases = applyBiasCompensation(pruned.graph, biasCompensationTargets(pruned.graph, this.analysis, plan), options.inputMeans);
    }
    applyPruningPlan(pruned.proto, this.analysis, plan);
    removeDeadNodes(pruned.proto);
    pruned.graph.invalidate();
    const actual = countModelStats(pruned.proto);
    const groups = this.analysis.groups.map((group): GroupPruningReport => {
      const keptUnits = plan.get(group.name);
      let importanceRemoved: number | undefined;
      let importanceKept: number | undefined;
      if (keptUnits !== undefined) {
        const scores = this.importance(group, options);
        const keptSet = new Set(keptUnits);
        const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
        importanceKept = mean([...scores].filter((_, u) => keptSet.has(u)));
        importanceRemoved = mean([...scores].filter((_, u) => !keptSet.has(u)));
      }
      const protectedBy = (options.protect ?? []).filter((name) => name === group.name || group.layers.includes(name));
      const reasons = [...group.frozenReasons, ...protectedBy.map((name) => `protected by the protect option ("${name}")`)];
      return {
        group: group.name,
        kind: group.kind,
        layers: group.layers,
        unitsBefore: group.units,
        unitsAfter: keptUnits?.length ?? group.units,
        unitSize: group.unitSize,
        importanceRemoved,
        importanceKept,
        frozen: reasons.length > 0,
        reasons,
      };
    });
    return {
      model: pruned,
      plan,
      report: {
        criterion: options.criterion ?? 'l1',
        compensatedBiases,
        original: { params: this.analysis.params, macs: this.analysis.macs },
        predicted,
        actual: { params: actual.params, macs: actual.macs },
        groups,
      },
    };
  }

  private requirePrunable(protect: readonly string[] = []): void {
    if (this.prunableGroups(protect).length > 0) return;
    const reasons = this.analysis.groups.flatMap((g) => g.frozenReasons).slice(0, 5);
    throw new ConfigError(
      `The model${this.model.source === undefined ? '' : ` ${this.model.source}`} has no prunable channel groups` +
        (reasons.length > 0 ? `: ${reasons.join('; ')}` : ' (no Conv, Gemm or MatMul layer with constant weights feeds another layer)') +
        '. Nothing was pruned; prune a model with Conv/Gemm/MatMul layers whose channels feed other prunable layers.',
    );
  }
}
