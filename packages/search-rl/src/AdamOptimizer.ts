import type { JsonValue } from '@open-autoglm/core';
import { decodeFloat32Base64, encodeFloat32Base64 } from './float32Base64.js';
import { tf } from './tensorflow.js';

/**
 * Adam over a fixed list of tfjs variables. tfjs has its own, but its moments can only be read
 * asynchronously; this one keeps them as plain variables so that an agent checkpoints its
 * optimizer state synchronously, between two trials, and resumes it exactly.
 */
export class AdamOptimizer {
  private readonly firstMoments: tf.Variable[];
  private readonly secondMoments: tf.Variable[];
  private steps = 0;

  constructor(
    private readonly variables: readonly tf.Variable[],
    private readonly learningRate: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = 1e-8,
  ) {
    this.firstMoments = tf.tidy(() => variables.map((variable) => tf.variable(tf.zerosLike(variable))));
    this.secondMoments = tf.tidy(() => variables.map((variable) => tf.variable(tf.zerosLike(variable))));
  }

  /** One step down the gradient of `loss` (over this optimizer's variables); returns the loss. */
  minimize(loss: () => tf.Scalar): number {
    this.steps++;
    const correction1 = 1 - this.beta1 ** this.steps;
    const correction2 = 1 - this.beta2 ** this.steps;
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(loss, [...this.variables]);
      this.variables.forEach((variable, i) => {
        const gradient = grads[variable.name] as tf.Tensor;
        const m = this.firstMoments[i] as tf.Variable;
        const v = this.secondMoments[i] as tf.Variable;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2)));
        const update = tf.div(tf.mul(m, this.learningRate / correction1), tf.add(tf.sqrt(tf.div(v, correction2)), this.epsilon));
        variable.assign(tf.sub(variable, update));
      });
      return value.dataSync()[0] as number;
    });
  }

  toJson(): JsonValue {
    return {
      steps: this.steps,
      first: this.firstMoments.map((moment) => encodeFloat32Base64(moment.dataSync())),
      second: this.secondMoments.map((moment) => encodeFloat32Base64(moment.dataSync())),
    };
  }

  loadJson(json: JsonValue): void {
    const saved = json as { steps?: unknown; first?: unknown; second?: unknown };
    if (typeof saved.steps !== 'number' || !Array.isArray(saved.first) || !Array.isArray(saved.second)) throw new RangeError('Expected a saved Adam state { steps, first, second }');
    this.steps = saved.steps;
    const restore = (moments: tf.Variable[], texts: readonly unknown[]): void =>
      moments.forEach((moment, i) => tf.tidy(() => moment.assign(tf.tensor(decodeFloat32Base64(String(texts[i])), moment.shape))));
    restore(this.firstMoments, saved.first);
    restore(this.secondMoments, saved.second);
  }

  dispose(): void {
    for (const moment of [...this.firstMoments, ...this.secondMoments]) moment.dispose();
  }
}
