import type { JsonValue } from '../contracts/JsonValue.js';
import type { TrialParams } from '../contracts/SearchSpace.js';
import type { StudyDirection } from '../contracts/Study.js';
import type { TargetDescription } from '../contracts/Target.js';
import type { ModelMetrics } from './planObjectives.js';

/** One trial as the report shows it. */
export interface ReportedTrial {
  readonly number: number;
  readonly state: 'complete' | 'failed' | 'running' | 'pruned' | 'waiting';
  readonly params: TrialParams;
  /** Measured metrics (accuracy, latency in ms, size in bytes, params, macs). */
  readonly metrics: ModelMetrics | undefined;
  readonly feasible: boolean;
  /** The bounds the trial broke, in words; empty when feasible. */
  readonly infeasibleBecause: readonly string[];
  readonly error: string | undefined;
  readonly durationMs: number | undefined;
  /** Whether the trial is on the feasible Pareto front. */
  readonly pareto: boolean;
  /** The file written for it in the output folder (Pareto-optimal trials and the best one). */
  readonly file: string | undefined;
  readonly passReports: Readonly<Record<string, JsonValue>> | undefined;
}

/** `report.json`: everything the run measured and chose. */
export interface CompressionReport {
  readonly config: string;
  readonly model: string;
  readonly target: TargetDescription & { readonly optimizationLevel: string };
  readonly objectives: ReadonlyArray<{ readonly metric: string; readonly direction: StudyDirection; readonly bound: string | undefined }>;
  readonly baseline: ModelMetrics;
  /**
   * Batch-1 latency of a model that does nothing with the same inputs, in ms: the runtime's fixed
   * cost per call, below which no compression takes batch-1 latency.
   */
  readonly callFloorMs: number;
  readonly best: ReportedTrial | undefined;
  /**
   * The final recovery of the best trial's plan, when one was configured: its options, what it
   * measured (undefined when it failed or timed out: `error` says why, and `best.onnx` is the
   * search's best), and whether `best.onnx` is its model (feasible and at least as accurate).
   */
  readonly recovery?: {
    readonly overrides: JsonValue;
    readonly metrics: ModelMetrics | undefined;
    readonly adopted: boolean;
    readonly infeasibleBecause: readonly string[];
    readonly error: string | undefined;
  };
  readonly pareto: readonly ReportedTrial[];
  readonly trials: readonly ReportedTrial[];
  /** The searched parameters (prefixed per pass) with their layers. */
  readonly searchSpace: ReadonlyArray<{ readonly name: string; readonly layer: string | undefined; readonly distribution: JsonValue }>;
  readonly search: { readonly strategy: string; readonly trialBudget: number; readonly stoppedBecause: string; readonly elapsedMs: number; readonly cacheHits: number; readonly cacheMisses: number };
  readonly createdAt: string;
}
