/**
 * Whole-model gradient checks (test support, not exported from the package): the parameter
 * gradients of a full training step against central finite differences of the loss, on the
 * parameter elements with the largest gradients. The loss is either a float64 reference
 * (`lossFloat64`, accurate at tiny steps) or the float32 step model's own loss output
 * (onnxruntime has no double Conv), where the step `h` must be large enough for float32
 * rounding and small enough not to cross ReLU and max-pool kinks.
 */
import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../../OnnxModel.js';
import type { ModelProto } from '../../proto.js';
import type { TrainingStepSignature } from '../TrainingStepSpec.js';
import type { Float64Tensor } from './evaluateFloat64.js';
import { StepRunner } from './StepRunner.js';

export interface ModelGradientCheckOptions {
  /**
   * The loss in float64 with some parameters replaced (e.g. from `crossEntropyFloat64`): the
   * differences then use it with a step of 1e-6 relative, instead of the float32 step model.
   */
  readonly lossFloat64?: (parameters: ReadonlyMap<string, Float64Tensor>) => number;
  /** Parameters to check (default: every trainable parameter). */
  readonly parameters?: readonly string[];
  /** Elements per parameter: the ones with the largest analytic gradient. Default 3. */
  readonly elements?: number;
  /** Finite-difference step relative to max(|p|, 0.1). Default 1e-2. */
  readonly relativeStep?: number;
}

export interface ParameterGradientCheck {
  readonly parameter: string;
  readonly indices: readonly number[];
  readonly analytic: readonly number[];
  readonly numeric: readonly number[];
  /** max |analytic - numeric| / max |numeric| over the sampled elements. */
  readonly relativeError: number;
}

/**
 * Runs the step once (learning rate 0) for the analytic gradients (the step must be built with
 * `exposeGradients`), then perturbs single parameter elements to difference the loss.
 */
export async function checkModelGradients(
  step: OnnxModel,
  signature: TrainingStepSignature,
  source: OnnxModel | ModelProto,
  batch: Record<string, ort.Tensor>,
  options: ModelGradientCheckOptions = {},
): Promise<ParameterGradientCheck[]> {
  const runner = await StepRunner.create(step, signature, source);
  try {
    const base = await runner.evaluate(batch);
    const checks: ParameterGradientCheck[] = [];
    const names = options.parameters ?? signature.parameters.map((p) => p.name);
    for (const name of names) {
      const parameter = signature.parameters.find((p) => p.name === name);
      if (parameter?.gradient === undefined) throw new Error(`no exposed gradient for ${name}`);
      const gradient = base[parameter.gradient]?.data as Float32Array;
      const value = runner.state.get(name)?.data as Float32Array;
      const indices = Array.from(gradient.keys())
        .sort((a, b) => Math.abs(gradient[b] as number) - Math.abs(gradient[a] as number))
        .slice(0, options.elements ?? 3);
      const numeric: number[] = [];
      for (const index of indices) {
        const lossFloat64 = options.lossFloat64;
        if (lossFloat64 !== undefined) {
          const h = 1e-6 * Math.max(Math.abs(value[index] as number), 0.1);
          const at = (delta: number): number => {
            const perturbed = Float64Array.from(value);
            perturbed[index] = (value[index] as number) + delta;
            return lossFloat64(new Map([[name, { data: perturbed, dims: parameter.dims }]]));
          };
          numeric.push((at(h) - at(-h)) / (2 * h));
          continue;
        }
        const h = (options.relativeStep ?? 1e-2) * Math.max(Math.abs(value[index] as number), 0.1);
        const lossWith = async (delta: number): Promise<{ loss: number; actualDelta: number }> => {
          const perturbed = Float32Array.from(value);
          perturbed[index] = (value[index] as number) + delta;
          const outputs = await runner.evaluate(batch, new Map([[name, new ort.Tensor('float32', perturbed, [...parameter.dims])]]));
          // The float32 value actually fed, so the difference quotient divides by the real step.
          return { loss: (outputs[signature.loss]?.data as Float32Array)[0] as number, actualDelta: (perturbed[index] as number) - (value[index] as number) };
        };
        const plus = await lossWith(h);
        const minus = await lossWith(-h);
        numeric.push((plus.loss - minus.loss) / (plus.actualDelta - minus.actualDelta));
      }
      const analytic = indices.map((i) => gradient[i] as number);
      const scale = Math.max(...numeric.map(Math.abs));
      const difference = Math.max(...analytic.map((a, i) => Math.abs(a - (numeric[i] as number))));
      checks.push({ parameter: name, indices, analytic, numeric, relativeError: scale === 0 ? difference : difference / scale });
    }
    return checks;
  } finally {
    await runner.release();
  }
}
