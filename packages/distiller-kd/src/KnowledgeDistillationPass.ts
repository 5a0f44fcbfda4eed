import path from 'node:path';
import {
  ConfigError,
  type Dataset as DatasetSplitData,
  type ModelArtifact,
  type ParameterDescriptor,
  type ParameterDistribution,
  type Pass,
  type PassContext,
  type PassResult,
  type SearchSpace,
  type TrialParams,
} from '@open-autoglm/core';
import { OnnxModel } from '@open-autoglm/onnx';
import { type Dataset, loadDataset } from '@open-autoglm/runtime';
import { distill } from './distill.js';
import type { DistillerOptions, TunableNumber } from './distillerOptions.js';

/** The options the search can tune, with the parameter names they get. */
const TUNABLE = ['temperature', 'alpha', 'learningRate', 'steps'] as const;
type TunableName = (typeof TUNABLE)[number];

const DESCRIPTIONS: Readonly<Record<TunableName, string>> = {
  temperature: 'softmax temperature of the distillation term',
  alpha: 'weight of the distillation term against cross-entropy on labels',
  learningRate: 'peak learning rate of the distillation run',
  steps: 'budget of training updates',
};

/**
 * Knowledge distillation as a pipeline pass: the trial's model (pruned, quantized) is trained to
 * imitate the run's original model (`context.original`) on the `train` split (or `calib` when
 * there is no train split), with labels when the split has them, and validated on `val`.
 */
export class KnowledgeDistillationPass implements Pass {
  constructor(private readonly options: DistillerOptions) {}

  async searchSpace(): Promise<SearchSpace> {
    const space: ParameterDescriptor[] = [];
    for (const name of TUNABLE) {
      const value = this.options[name];
      const distribution = value === undefined ? undefined : distributionOf(value, name === 'steps' ? 'int' : 'float');
      if (distribution !== undefined) space.push({ name, distribution, description: DESCRIPTIONS[name] });
    }
    return space;
  }

  async apply(model: ModelArtifact, params: TrialParams, context: PassContext): Promise<PassResult> {
    const value = (name: TunableName): number | undefined => {
      const option = this.options[name];
      if (option === undefined) return undefined;
      if (typeof option === 'number') return option;
      if (Array.isArray(option) && option.length === 1) return option[0] as number;
      const chosen = params[name];
      if (typeof chosen !== 'number') {
        throw new ConfigError(
          `distiller-kd needs a number for its searched parameter "${name}", but the trial gives ${JSON.stringify(chosen) ?? 'none'}. ` +
            'Pass the values the search space asked for.',
        );
      }
      return chosen;
    };
    const split = context.datasets.train ?? context.datasets.calib;
    if (split === undefined) {
      throw new ConfigError('distiller-kd trains on the data.train split (or data.calib), but the config names neither. Add data.train (x, and y when labelled).');
    }
    const train = await toRuntimeDataset(split);
    const validation = context.datasets.val?.source.y === undefined ? undefined : await toRuntimeDataset(context.datasets.val);
    const labelled = train.labels !== undefined;
    const alpha = labelled ? value('alpha') : 1;
    const steps = value('steps');
    const teacher = OnnxModel.fromBytes(context.original.bytes, { source: context.original.path });
    const student = OnnxModel.fromBytes(model.bytes, { source: model.path });
    const began = performance.now();
    const result = await distill({
      teacher,
      student,
      train,
      ...(validation === undefined ? {} : { validation }),
      temperature: value('temperature') as number,
      ...(alpha === undefined ? {} : { alpha }),
      learningRate: value('learningRate') as number,
      ...(steps === undefined ? {} : { steps }),
      ...(this.options.epochs === undefined ? {} : { epochs: this.options.epochs }),
      batchSize: this.options.batchSize,
      features: this.options.features,
      featureWeight: this.options.featureWeight,
      ...(this.options.patience === undefined ? {} : { patience: this.options.patience }),
      schedule: this.options.schedule,
      seed: context.seed,
      target: { device: context.target.device, threads: context.target.threads },
      ...(this.options.teacherCache === undefined
        ? {}
        : { teacherCache: this.options.teacherCache === 'disk' ? { directory: context.workDir } : this.options.teacherCache }),
      ...(this.options.augmentation === undefined ? {} : { augmentation: this.options.augmentation }),
      onEvent: (event) => {
        if (event.kind === 'epoch') {
          context.logger.info(`distiller-kd: epoch ${event.summary.epoch + 1}/${event.epochs}`, {
            trainLoss: event.summary.trainLoss,
            validationAccuracy: event.summary.validationAccuracy,
          });
        }
      },
      ...(context.signal === undefined ? {} : { signal: context.signal }),
    });
    const output = path.join(context.workDir, 'distilled.onnx');
    await result.model.save(output);
    return {
      model: { path: output, bytes: result.model.toBytes() },
      report: {
        steps: result.steps,
        stop: result.stop,
        alpha: result.alpha,
        temperature: result.temperature,
        labelled,
        validationAccuracy: result.validationAccuracy,
        bestEpoch: result.bestEpoch,
        requantizedWeights: result.requantizedWeights,
        trainLoss: result.history.map((h) => h.trainLoss),
        epochValidationAccuracy: result.history.map((h) => h.validationAccuracy),
        features: result.features.map((f) => `${f.student} <- ${f.teacher}${f.projection === undefined ? '' : ' (projected)'}`),
        augmentation: this.options.augmentation ?? null,
        seconds: (performance.now() - began) / 1000,
      },
    };
  }
}

function distributionOf(value: TunableNumber, kind: 'float' | 'int'): ParameterDistribution | undefined {
  if (typeof value === 'number') return undefined;
  if (Array.isArray(value)) return value.length === 1 ? undefined : { kind: 'categorical', choices: [...value] };
  const range = value as Exclude<TunableNumber, number | readonly number[]>;
  return {
    kind,
    low: range.min,
    high: range.max,
    ...(range.step === undefined ? {} : { step: range.step }),
    ...(range.log === undefined ? {} : { log: range.log }),
  };
}

async function toRuntimeDataset(split: DatasetSplitData): Promise<Dataset> {
  return loadDataset({ x: split.source.x, ...(split.source.y === undefined ? {} : { y: split.source.y }) });
}
