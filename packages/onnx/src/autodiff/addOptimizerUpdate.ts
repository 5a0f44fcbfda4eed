import { ConfigError } from '@open-autoglm/core';
import { DataType } from '../proto.js';
import type { StepGraphBuilder } from './StepGraphBuilder.js';
import type { OptimizerSpec, OptimizerStateTensor, TrainedParameter } from './TrainingStepSpec.js';

/** A parameter with the tensor holding its loss gradient. */
export interface ParameterGradient {
  readonly name: string;
  /** The source-model initializer holding its initial value. */
  readonly initializer: string;
  readonly gradient: string;
  readonly dims: readonly number[];
}

/** The optimizer with PyTorch's defaults filled in; throws ConfigError on values PyTorch rejects. */
export function resolveOptimizer(spec: OptimizerSpec): Required<OptimizerSpec> {
  const fail = (message: string): never => {
    throw new ConfigError(`Invalid ${spec.kind} optimizer: ${message}.`);
  };
  const nonNegative = (name: string, value: number): void => {
    if (!Number.isFinite(value) || value < 0) fail(`${name} must be a finite number >= 0, got ${value}`);
  };
  if (spec.kind === 'sgd') {
    const resolved = { kind: 'sgd' as const, momentum: spec.momentum ?? 0, dampening: spec.dampening ?? 0, nesterov: spec.nesterov ?? false, weightDecay: spec.weightDecay ?? 0 };
    nonNegative('momentum', resolved.momentum);
    nonNegative('dampening', resolved.dampening);
    nonNegative('weightDecay', resolved.weightDecay);
    if (resolved.nesterov && (resolved.momentum <= 0 || resolved.dampening !== 0)) {
      fail('nesterov needs momentum > 0 and dampening 0 (as in PyTorch); set momentum, e.g. 0.9');
    }
    return resolved;
  }
  if (spec.kind !== 'adam' && spec.kind !== 'adamw') {
    throw new ConfigError(`Unknown optimizer "${String((spec as { kind: unknown }).kind)}". Use sgd, adam or adamw.`);
  }
  const resolved = {
    kind: spec.kind,
    beta1: spec.beta1 ?? 0.9,
    beta2: spec.beta2 ?? 0.999,
    epsilon: spec.epsilon ?? 1e-8,
    weightDecay: spec.weightDecay ?? (spec.kind === 'adamw' ? 0.01 : 0),
  };
  for (const beta of ['beta1', 'beta2'] as const) {
    if (!(resolved[beta] >= 0 && resolved[beta] < 1)) fail(`${beta} must be in [0, 1), got ${resolved[beta]}`);
  }
  nonNegative('epsilon', resolved.epsilon);
  nonNegative('weightDecay', resolved.weightDecay);
  return resolved;
}

/**
 * Adds the optimizer update of every parameter: new parameter values and optimizer state as
 * outputs, the state as inputs. `learningRate` is a float32 scalar and `step` an int64 scalar
 * (1 on the first update) of the graph.
 */
export function addOptimizerUpdate(
  builder: StepGraphBuilder,
  optimizer: Required<OptimizerSpec>,
  parameters: readonly ParameterGradient[],
  learningRate: string,
  step: string,
): TrainedParameter[] {
  builder.scope = 'optimizer';
  const stepFloat = (): string => builder.op('Cast', [step], { to: DataType.FLOAT });
  const stateTensor = (slot: OptimizerStateTensor['slot'], parameter: ParameterGradient): OptimizerStateTensor => ({
    slot,
    name: builder.fresh(`optimizer.${slot}.${parameter.name}`),
    updated: builder.fresh(`updated.optimizer.${slot}.${parameter.name}`),
    dims: parameter.dims,
  });
  const trained: TrainedParameter[] = [];

  if (optimizer.kind === 'sgd') {
    const { momentum, dampening, nesterov, weightDecay } = optimizer;
    // With dampening, PyTorch's first momentum buffer is the raw gradient, not (1 - d) * g.
    const firstStep = momentum > 0 && dampening !== 0 ? builder.op('Equal', [step, builder.constant(BigInt64Array.of(1n), [])]) : undefined;
    for (const parameter of parameters) {
      const updated = builder.fresh(`updated.${parameter.name}`);
      let gradient = parameter.gradient;
      if (weightDecay !== 0) gradient = builder.op('Add', [gradient, builder.op('Mul', [parameter.name, builder.scalar(weightDecay)])]);
      const state: OptimizerStateTensor[] = [];
      if (momentum > 0) {
        const buffer = stateTensor('momentum', parameter);
        state.push(buffer);
        const scaled = dampening === 0 ? gradient : builder.op('Mul', [gradient, builder.scalar(1 - dampening)]);
        const inputs = [builder.op('Mul', [buffer.name, builder.scalar(momentum)]), scaled];
        if (firstStep === undefined) builder.addNamed('Add', inputs, [buffer.updated]);
        else builder.addNamed('Where', [firstStep, gradient, builder.op('Add', inputs)], [buffer.updated]);
        gradient = nesterov ? builder.op('Add', [gradient, builder.op('Mul', [buffer.updated, builder.scalar(momentum)])]) : buffer.updated;
      }
      builder.addNamed('Sub', [parameter.name, builder.op('Mul', [gradient, learningRate])], [updated]);
      trained.push({ name: parameter.name, initializer: parameter.initializer, updated, dims: parameter.dims, state });
    }
    return trained;
  }

  const { beta1, beta2, epsilon, weightDecay } = optimizer;
  const t = stepFloat();
  const biasCorrection1 = builder.op('Sub', [builder.scalar(1), builder.op('Pow', [builder.scalar(beta1), t])]);
  const biasCorrection2Sqrt = builder.op('Sqrt', [builder.op('Sub', [builder.scalar(1), builder.op('Pow', [builder.scalar(beta2), t])])]);
  const stepSize = builder.op('Div', [learningRate, biasCorrection1]);
  const decoupled = optimizer.kind === 'adamw' && weightDecay !== 0;
  const decayFactor = decoupled ? builder.op('Sub', [builder.scalar(1), builder.op('Mul', [learningRate, builder.scalar(weightDecay)])]) : undefined;
  for (const parameter of parameters) {
    const updated = builder.fresh(`updated.${parameter.name}`);
    const average = stateTensor('exp_avg', parameter);
    const averageSquare = stateTensor('exp_avg_sq', parameter);
    let gradient = parameter.gradient;
    if (!decoupled && weightDecay !== 0) gradient = builder.op('Add', [gradient, builder.op('Mul', [parameter.name, builder.scalar(weightDecay)])]);
    const start = decayFactor === undefined ? parameter.name : builder.op('Mul', [parameter.name, decayFactor]);
    builder.addNamed('Add', [builder.op('Mul', [average.name, builder.scalar(beta1)]), builder.op('Mul', [gradient, builder.scalar(1 - beta1)])], [average.updated]);
    const square = builder.op('Mul', [gradient, gradient]);
    builder.addNamed('Add', [builder.op('Mul', [averageSquare.name, builder.scalar(beta2)]), builder.op('Mul', [square, builder.scalar(1 - beta2)])], [averageSquare.updated]);
    const denominator = builder.op('Add', [builder.op('Div', [builder.op('Sqrt', [averageSquare.updated]), biasCorrection2Sqrt]), builder.scalar(epsilon)]);
    const change = builder.op('Mul', [builder.op('Div', [average.updated, denominator]), stepSize]);
    builder.addNamed('Sub', [start, change], [updated]);
    trained.push({ name: parameter.name, initializer: parameter.initializer, updated, dims: parameter.dims, state: [average, averageSquare] });
  }
  return trained;
}
