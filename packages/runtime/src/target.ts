import { ConfigError } from '@open-autoglm/core';
import { type InferenceSession, listSupportedBackends } from 'onnxruntime-node';

/** Devices a target can name. Only `cpu` ships inside onnxruntime-node on every platform. */
export const RUNTIME_DEVICES = ['cpu', 'cuda', 'tensorrt', 'dml', 'coreml', 'webgpu'] as const;
export type RuntimeDevice = (typeof RUNTIME_DEVICES)[number];

export const OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
/** onnxruntime graph optimization level. QDQ fusion into integer kernels needs `extended` or `all`. */
export type OptimizationLevel = (typeof OPTIMIZATION_LEVELS)[number];

/** Where and how a model runs. */
export interface RuntimeTarget {
  device: RuntimeDevice;
  /** Intra-op threads. More than the physical core count slows inference down. */
  threads: number;
  /** Inter-op threads (only used by parallel execution mode); onnxruntime's default when absent. */
  interOpThreads?: number;
  /** Graph optimization level; default `all`. */
  optimizationLevel?: OptimizationLevel;
  /**
   * Execution providers in order of preference, instead of just `device`'s (e.g.
   * `['tensorrt', 'cuda']` for device `cuda`); must include `device`. `cpu` is appended when
   * missing so every op has a kernel.
   */
  executionProviders?: readonly string[];
  /**
   * Let idle pool threads spin waiting for work; default false. Spinning lowers latency on an idle
   * machine but steals CPU from other processes and makes timings on a shared machine noisy.
   */
  spinning?: boolean;
}

/** A target with every default filled in. */
export interface ResolvedRuntimeTarget {
  readonly device: RuntimeDevice;
  readonly threads: number;
  readonly interOpThreads: number | undefined;
  readonly optimizationLevel: OptimizationLevel;
  readonly executionProviders: readonly string[];
  readonly spinning: boolean;
}

/** One thread on the CPU, every optimization, no spinning: the cleanest setting for measurements. */
export const DEFAULT_RUNTIME_TARGET: Readonly<RuntimeTarget> = Object.freeze({ device: 'cpu', threads: 1 });

/** Execution providers this onnxruntime-node build knows, and whether it carries their libraries. */
export function availableExecutionProviders(): ReadonlyArray<{ name: string; bundled: boolean }> {
  return listSupportedBackends();
}

/**
 * Checks a target and fills in its defaults. Throws ConfigError for unknown devices, bad thread
 * counts and providers this onnxruntime-node build does not have.
 */
export function resolveRuntimeTarget(target: RuntimeTarget): ResolvedRuntimeTarget {
  if (!(RUNTIME_DEVICES as readonly string[]).includes(target.device)) {
    throw new ConfigError(
      `Unknown runtime device "${String(target.device)}". Use one of: ${RUNTIME_DEVICES.join(', ')}.`,
    );
  }
  checkThreadCount('threads', target.threads);
  if (target.interOpThreads !== undefined) checkThreadCount('interOpThreads', target.interOpThreads);
  const optimizationLevel = target.optimizationLevel ?? 'all';
  if (!(OPTIMIZATION_LEVELS as readonly string[]).includes(optimizationLevel)) {
    throw new ConfigError(
      `Unknown optimization level "${String(optimizationLevel)}". Use one of: ${OPTIMIZATION_LEVELS.join(', ')}.`,
    );
  }
  const requested = target.executionProviders ?? [target.device];
  if (requested.length === 0) {
    throw new ConfigError('executionProviders is empty. Name at least one provider, e.g. ["cpu"], or leave it out.');
  }
  if (!requested.includes(target.device)) {
    throw new ConfigError(
      `Device "${target.device}" is not among executionProviders [${requested.join(', ')}]. ` +
        `Add "${target.device}" to executionProviders, or set device to the provider you want.`,
    );
  }
  const available = availableExecutionProviders();
  for (const name of requested) {
    if (!available.some((p) => p.name === name)) {
      throw new ConfigError(
        `Execution provider "${name}" is not available in this onnxruntime-node build ` +
          `(${process.platform}/${process.arch}; available: ${available.map((p) => p.name).join(', ')}). ` +
          'Use device "cpu", or install an onnxruntime-node build that includes this provider.',
      );
    }
  }
  const executionProviders = requested.includes('cpu') ? [...requested] : [...requested, 'cpu'];
  return {
    device: target.device,
    threads: target.threads,
    interOpThreads: target.interOpThreads,
    optimizationLevel,
    executionProviders,
    spinning: target.spinning ?? false,
  };
}

function checkThreadCount(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`Runtime target ${field} must be a whole number >= 1, got ${String(value)}.`);
  }
}

/**
 * onnxruntime-node session options implementing a resolved target. `externalDataFolder` tells
 * onnxruntime where the external data of a model given as bytes lives (a path carries it itself).
 */
export function sessionOptionsForTarget(
  target: ResolvedRuntimeTarget,
  { externalDataFolder }: { externalDataFolder?: string } = {},
): InferenceSession.SessionOptions {
  const spinning = target.spinning ? '1' : '0';
  const session: Record<string, string> = { 'intra_op.allow_spinning': spinning, 'inter_op.allow_spinning': spinning };
  if (externalDataFolder !== undefined) session['model_external_initializers_file_folder_path'] = externalDataFolder;
  return {
    executionProviders: target.executionProviders,
    intraOpNumThreads: target.threads,
    ...(target.interOpThreads === undefined ? {} : { interOpNumThreads: target.interOpThreads }),
    graphOptimizationLevel: target.optimizationLevel,
    // Warnings (e.g. about unused initializers) would flood CLI output; errors still surface as exceptions.
    logSeverityLevel: 3,
    extra: { session },
  };
}
