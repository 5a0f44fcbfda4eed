import type { JsonValue, SeededRandom } from '@open-autoglm/core';
import { decodeFloat32Base64, encodeFloat32Base64 } from './float32Base64.js';
import { quietTensorflow, tf } from './tensorflow.js';

/**
 * A fully connected network (ReLU between layers, linear output) whose weights are tfjs
 * variables initialized from a seeded generator (Glorot uniform, zero biases), so that two
 * agents built with one seed start identical.
 */
export class Mlp {
  /** Weights and biases, alternating, first layer first. */
  readonly variables: tf.Variable[];

  /**
   * @param sizes input size, hidden sizes, output size
   * @param outputScale the last layer's weights are uniform in ±outputScale (DDPG's small final
   *   layer keeps the first actions near the middle of the range); Glorot when undefined
   */
  constructor(
    readonly sizes: readonly number[],
    random: SeededRandom,
    outputScale?: number,
  ) {
    quietTensorflow();
    this.variables = [];
    for (let layer = 0; layer + 1 < sizes.length; layer++) {
      const fanIn = sizes[layer] as number;
      const fanOut = sizes[layer + 1] as number;
      const isLast = layer + 2 === sizes.length;
      const limit = isLast && outputScale !== undefined ? outputScale : Math.sqrt(6 / (fanIn + fanOut));
      const weights = Float32Array.from({ length: fanIn * fanOut }, () => (2 * random.nextFloat() - 1) * limit);
      // tidy frees the initial values; the variables keep their own reference to the data.
      this.variables.push(...tf.tidy(() => [tf.variable(tf.tensor2d(weights, [fanIn, fanOut])), tf.variable(tf.zeros([fanOut]))]));
    }
  }

  apply(input: tf.Tensor2D): tf.Tensor2D {
    let x = input;
    for (let i = 0; i < this.variables.length; i += 2) {
      x = tf.add(tf.matMul(x, this.variables[i] as tf.Variable), this.variables[i + 1] as tf.Variable);
      if (i + 2 < this.variables.length) x = tf.relu(x);
    }
    return x;
  }

  /** The weights, exactly (float32 as base64). */
  toJson(): JsonValue {
    return this.variables.map((variable) => encodeFloat32Base64(variable.dataSync()));
  }

  /** Restores weights saved by `toJson` from a network of the same sizes. */
  loadJson(json: JsonValue): void {
    if (!Array.isArray(json) || json.length !== this.variables.length) throw new RangeError(`Expected ${this.variables.length} saved weight tensors`);
    this.variables.forEach((variable, i) => {
      const values = decodeFloat32Base64(String(json[i]));
      if (values.length !== variable.size) throw new RangeError(`Saved weights ${i} have ${values.length} values, the network ${variable.size}`);
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    });
  }

  dispose(): void {
    for (const variable of this.variables) variable.dispose();
  }
}
