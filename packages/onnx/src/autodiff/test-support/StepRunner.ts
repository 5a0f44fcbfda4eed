/**
 * Running training steps in onnxruntime for the tests (not exported from the package).
 */
import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../../OnnxModel.js';
import type { ModelProto } from '../../proto.js';
import { initialTrainingState } from '../initialTrainingState.js';
import type { TrainingStepSignature } from '../TrainingStepSpec.js';

/** A training-step session with its state, fed back after every step. */
export class StepRunner {
  /** Current parameters, optimizer state and buffers by input name. */
  readonly state = new Map<string, ort.Tensor>();
  /** Number of updates done. */
  steps = 0;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly signature: TrainingStepSignature,
    source: OnnxModel | ModelProto,
  ) {
    for (const [name, value] of initialTrainingState(source, signature)) this.state.set(name, new ort.Tensor('float32', value.data, [...value.dims]));
  }

  /** A runner of `step`, starting from the parameters of `source`, the model the step was built from. */
  static async create(step: OnnxModel, signature: TrainingStepSignature, source: OnnxModel | ModelProto): Promise<StepRunner> {
    const session = await ort.InferenceSession.create(step.toBytes(), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    return new StepRunner(session, signature, source);
  }

  /** Runs one step on `batch` (inputs, labels, teacher tensors by input name) and keeps the updated state. */
  async step(batch: Record<string, ort.Tensor>, learningRate: number): Promise<Record<string, ort.Tensor>> {
    const feeds: Record<string, ort.Tensor> = {
      ...Object.fromEntries(this.state),
      ...batch,
      [this.signature.step]: new ort.Tensor('int64', BigInt64Array.of(BigInt(this.steps + 1)), []),
      [this.signature.learningRate]: new ort.Tensor('float32', Float32Array.of(learningRate), []),
    };
    const outputs = await this.session.run(feeds);
    this.steps++;
    for (const parameter of this.signature.parameters) {
      this.state.set(parameter.name, outputs[parameter.updated] as ort.Tensor);
      for (const slot of parameter.state) this.state.set(slot.name, outputs[slot.updated] as ort.Tensor);
    }
    for (const buffer of this.signature.buffers) this.state.set(buffer.name, outputs[buffer.updated] as ort.Tensor);
    return outputs;
  }

  /** The loss (and outputs) at the current state without keeping any update (learning rate 0, state restored). */
  async evaluate(batch: Record<string, ort.Tensor>, overrides: ReadonlyMap<string, ort.Tensor> = new Map()): Promise<Record<string, ort.Tensor>> {
    const feeds: Record<string, ort.Tensor> = {
      ...Object.fromEntries(this.state),
      ...Object.fromEntries(overrides),
      ...batch,
      [this.signature.step]: new ort.Tensor('int64', BigInt64Array.of(1n), []),
      [this.signature.learningRate]: new ort.Tensor('float32', Float32Array.of(0), []),
    };
    return this.session.run(feeds);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** A float32 scalar output as a number. */
export function scalarOf(tensor: ort.Tensor | undefined): number {
  if (tensor === undefined) throw new Error('missing output');
  return Number((tensor.data as Float32Array | BigInt64Array)[0]);
}
