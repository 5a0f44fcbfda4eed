/**
 * Gradient checks for the autodiff rules (test support, not exported from the package): the
 * analytic gradients of a training step built by `buildTrainingStep`, run in onnxruntime,
 * against float64 central finite differences of the same loss.
 *
 * The model under test is a small graph (usually one node) whose float inputs become trainable
 * parameters. The loss is `sum over outputs of mean((y - t)^2)` with fixed random targets `t`
 * (the step's `mse` term), computed for the finite differences in float64 in JavaScript from
 * the forward outputs. The forward runs in onnxruntime with float64 inputs when every op of
 * the graph has a double kernel, else in float32 with a larger epsilon (`precision`).
 */
import { toBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { DataType, ModelProtoSchema, type ModelProto, type TensorProto } from '../../proto.js';
import { arrayToTensor } from '../../tensor.js';
import { buildModel, type NodeSpec, randomArray } from '../../test-support/testModels.js';
import { buildTrainingStep } from '../buildTrainingStep.js';
import type { GradientRuleTable, TrainingMode } from '../GradientRule.js';
import { initialTrainingState } from '../initialTrainingState.js';

export interface GradientCheckInput {
  readonly name: string;
  readonly dims: readonly number[];
  /** Values; default pseudo-random in [-1, 1) (see `randomArray`), seeded by the input's position. */
  readonly data?: Float32Array | BigInt64Array;
  /** FLOAT (default) or an integer type for indices; only float inputs get gradients. */
  readonly dataType?: DataType;
  /** Check the gradient of this input; default true for float inputs. */
  readonly differentiable?: boolean;
}

export interface GradientCheckCase {
  readonly nodes: readonly NodeSpec[];
  readonly inputs: readonly GradientCheckInput[];
  /** The float outputs the loss reads. */
  readonly outputs: readonly string[];
  /** Default 17. */
  readonly opset?: number;
  /** Default 'eval' (no forward rewrites); 'train' for BatchNorm batch statistics and the like. */
  readonly mode?: TrainingMode;
  /** Rules added to the default table, e.g. a rule under development. */
  readonly rules?: GradientRuleTable;
}

export interface GradientCheckOptions {
  /** 'auto' (default) tries float64 and falls back to float32 when an op has no double kernel. */
  readonly precision?: 'auto' | 'float64' | 'float32';
  /** Finite-difference step; default 1e-6 in float64, 1e-2 in float32 (scaled by max(1, |x|)). */
  readonly epsilon?: number;
  /** Seed of the loss targets. */
  readonly seed?: number;
}

export interface InputGradientCheck {
  readonly analytic: Float32Array;
  readonly numeric: Float64Array;
  /** max |analytic - numeric| / max |numeric| (the scale of the gradient); 0 when both are 0. */
  readonly relativeError: number;
}

export interface GradientCheckResult {
  readonly inputs: Readonly<Record<string, InputGradientCheck>>;
  /** The largest `relativeError` over the checked inputs. */
  readonly maxRelativeError: number;
  readonly precision: 'float64' | 'float32';
}

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };

/** Builds the case's model (all inputs as initializers), its training step and both gradients. */
export async function checkGradients(testCase: GradientCheckCase, options: GradientCheckOptions = {}): Promise<GradientCheckResult> {
  const values = testCase.inputs.map((input, i) => input.data ?? randomArray(input.dims.reduce((a, b) => a * b, 1), 7 + 31 * i));
  const isFloat = (input: GradientCheckInput): boolean => (input.dataType ?? DataType.FLOAT) === DataType.FLOAT;
  const checked = testCase.inputs.filter((input) => isFloat(input) && input.differentiable !== false).map((input) => input.name);

  // Forward model with every input fed (for the finite differences and the output shapes).
  const forward = async (precision: 'float64' | 'float32'): Promise<ort.InferenceSession> => {
    const floatType = precision === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
    const model = buildModel(
      {
        inputs: testCase.inputs.map((input) => ({ name: input.name, dataType: isFloat(input) ? floatType : (input.dataType as DataType), dims: [...input.dims] })),
        outputs: [...testCase.outputs],
        nodes: [...testCase.nodes],
        opset: testCase.opset ?? 17,
      },
      Object.fromEntries(testCase.outputs.map((name) => [name, floatType])),
    );
    return ort.InferenceSession.create(toBinary(ModelProtoSchema, model), SESSION_OPTIONS);
  };
  let precision: 'float64' | 'float32' = options.precision === 'float32' ? 'float32' : 'float64';
  let session: ort.InferenceSession;
  try {
    session = await forward(precision);
  } catch (error) {
    if (options.precision === 'float64') throw error;
    precision = 'float32';
    session = await forward(precision);
  }
  const feedsAt = (overrides: ReadonlyMap<string, Float64Array>): Record<string, ort.Tensor> =>
    Object.fromEntries(
      testCase.inputs.map((input, i) => {
        const data = values[i] as Float32Array | BigInt64Array;
        if (!isFloat(input)) return [input.name, new ort.Tensor(data instanceof BigInt64Array ? 'int64' : 'int32', data, [...input.dims])];
        const current = overrides.get(input.name) ?? Float64Array.from(data as Float32Array);
        const typed = precision === 'float64' ? current : Float32Array.from(current);
        return [input.name, new ort.Tensor(precision, typed, [...input.dims])];
      }),
    );

  try {
    const reference = await session.run(feedsAt(new Map()));
    const targets = testCase.outputs.map((name, i) => {
      const tensor = reference[name] as ort.Tensor;
      return { name, dims: [...tensor.dims], data: randomArray(tensor.size, (options.seed ?? 99) + 13 * i) };
    });
    const lossAt = async (overrides: ReadonlyMap<string, Float64Array>): Promise<number> => {
      const outputs = await session.run(feedsAt(overrides));
      let loss = 0;
      for (const target of targets) {
        const y = (outputs[target.name] as ort.Tensor).data as Float64Array | Float32Array;
        let sum = 0;
        for (let j = 0; j < y.length; j++) {
          const d = (y[j] as number) - (target.data[j] as number);
          sum += d * d;
        }
        loss += sum / y.length;
      }
      return loss;
    };

    const analytic = await analyticGradients(testCase, values, checked, targets);
    const inputs: Record<string, InputGradientCheck> = {};
    let maxRelativeError = 0;
    for (const name of checked) {
      const position = testCase.inputs.findIndex((input) => input.name === name);
      const base = Float64Array.from(values[position] as Float32Array);
      const numeric = new Float64Array(base.length);
      const epsilon = options.epsilon ?? (precision === 'float64' ? 1e-6 : 1e-2);
      for (let j = 0; j < base.length; j++) {
        const h = epsilon * Math.max(1, Math.abs(base[j] as number));
        const plus = Float64Array.from(base);
        plus[j] = (base[j] as number) + h;
        const minus = Float64Array.from(base);
        minus[j] = (base[j] as number) - h;
        numeric[j] = ((await lossAt(new Map([[name, plus]]))) - (await lossAt(new Map([[name, minus]])))) / (2 * h);
      }
      const gradient = analytic.get(name) as Float32Array;
      let difference = 0;
      let scale = 0;
      for (let j = 0; j < numeric.length; j++) {
        difference = Math.max(difference, Math.abs((gradient[j] as number) - (numeric[j] as number)));
        scale = Math.max(scale, Math.abs(numeric[j] as number));
      }
      const relativeError = scale === 0 ? (difference === 0 ? 0 : Infinity) : difference / scale;
      inputs[name] = { analytic: gradient, numeric, relativeError };
      maxRelativeError = Math.max(maxRelativeError, relativeError);
    }
    return { inputs, maxRelativeError, precision };
  } finally {
    await session.release();
  }
}

/** The gradients of the checked inputs from the training step, run in onnxruntime in float32. */
async function analyticGradients(
  testCase: GradientCheckCase,
  values: readonly (Float32Array | BigInt64Array)[],
  checked: readonly string[],
  targets: readonly { name: string; dims: number[]; data: Float32Array }[],
): Promise<Map<string, Float32Array>> {
  const initializers: TensorProto[] = testCase.inputs.map((input, i) =>
    arrayToTensor(input.name, values[i] as Float32Array | BigInt64Array, [...input.dims], input.dataType ?? DataType.FLOAT),
  );
  const model: ModelProto = buildModel({
    inputs: [],
    outputs: [...testCase.outputs],
    nodes: [...testCase.nodes],
    initializers,
    opset: testCase.opset ?? 17,
  });
  const { model: step, signature } = buildTrainingStep(model, {
    trainable: checked,
    mode: testCase.mode ?? 'eval',
    loss: [{ kind: 'mse', pairs: testCase.outputs.map((student) => ({ student })) }],
    optimizer: { kind: 'sgd' },
    exposeGradients: true,
    ...(testCase.rules === undefined ? {} : { rules: testCase.rules }),
  });
  const problems = step.problems();
  if (problems.length > 0) throw new Error(`the training step is not valid ONNX: ${problems.join('; ')}`);
  const feeds: Record<string, ort.Tensor> = {
    [signature.step]: new ort.Tensor('int64', BigInt64Array.of(1n), []),
    [signature.learningRate]: new ort.Tensor('float32', Float32Array.of(0), []),
  };
  for (const [name, value] of initialTrainingState(model, signature)) feeds[name] = new ort.Tensor('float32', value.data, [...value.dims]);
  for (const teacher of signature.teacherFeatures) {
    const target = targets.find((t) => t.name === teacher.student);
    if (target === undefined) throw new Error(`no target for ${teacher.student}`);
    feeds[teacher.name] = new ort.Tensor('float32', target.data, target.dims);
  }
  const session = await ort.InferenceSession.create(step.toBytes(), SESSION_OPTIONS);
  try {
    const outputs = await session.run(feeds);
    const gradients = new Map<string, Float32Array>();
    for (const name of checked) {
      const parameter = signature.parameters.find((p) => p.name === name);
      if (parameter?.gradient === undefined) {
        // The loss does not depend on this input: its gradient is zero.
        const position = testCase.inputs.findIndex((input) => input.name === name);
        gradients.set(name, new Float32Array((values[position] as Float32Array).length));
        continue;
      }
      gradients.set(name, (outputs[parameter.gradient] as ort.Tensor).data as Float32Array);
    }
    return gradients;
  } finally {
    await session.release();
  }
}

