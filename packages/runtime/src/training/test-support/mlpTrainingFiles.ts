import path from 'node:path';
import { SeededRandom } from '@open-autoglm/core';
import { arrayToTensor, DataType, makeModel, makeNode, makeTensorValueInfo, OnnxModel } from '@open-autoglm/onnx';
import { writeNpy } from '../../npy.js';

/** Paths of a small training problem written to a folder. */
export interface MlpTrainingFiles {
  readonly model: string;
  readonly trainX: string;
  readonly trainY: string;
  readonly valX: string;
  readonly valY: string;
}

const FEATURES = 8;
const HIDDEN = 16;
const CLASSES = 3;

/**
 * Writes a two-layer perceptron (Gemm-Relu-Gemm, 8 -> 16 -> 3, opset 17, dynamic batch) and
 * three noisy, separable classes as .npy files (96 training and 48 validation samples): a
 * problem every op of which already has a gradient rule, small enough for tests of the
 * training job, the worker and the CLI.
 */
export async function writeMlpTrainingFiles(dir: string): Promise<MlpTrainingFiles> {
  const random = new SeededRandom(99);
  const uniform = (n: number, bound: number): Float32Array => Float32Array.from({ length: n }, () => (2 * random.nextFloat() - 1) * bound);
  const model = new OnnxModel(
    makeModel({
      name: 'mlp',
      node: [
        makeNode('Gemm', ['input', 'fc1.weight', 'fc1.bias'], ['hidden'], { transB: 1 }),
        makeNode('Relu', ['hidden'], ['activation']),
        makeNode('Gemm', ['activation', 'fc2.weight', 'fc2.bias'], ['logits'], { transB: 1 }),
      ],
      input: [makeTensorValueInfo('input', DataType.FLOAT, ['batch', FEATURES])],
      output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', CLASSES])],
      initializer: [
        arrayToTensor('fc1.weight', uniform(HIDDEN * FEATURES, 1 / Math.sqrt(FEATURES)), [HIDDEN, FEATURES]),
        arrayToTensor('fc1.bias', uniform(HIDDEN, 1 / Math.sqrt(FEATURES)), [HIDDEN]),
        arrayToTensor('fc2.weight', uniform(CLASSES * HIDDEN, 1 / Math.sqrt(HIDDEN)), [CLASSES, HIDDEN]),
        arrayToTensor('fc2.bias', uniform(CLASSES, 1 / Math.sqrt(HIDDEN)), [CLASSES]),
      ],
    }),
  );
  const files: MlpTrainingFiles = {
    model: path.join(dir, 'mlp.onnx'),
    trainX: path.join(dir, 'train.x.npy'),
    trainY: path.join(dir, 'train.y.npy'),
    valX: path.join(dir, 'val.x.npy'),
    valY: path.join(dir, 'val.y.npy'),
  };
  await model.save(files.model);
  for (const [n, x, y] of [
    [96, files.trainX, files.trainY],
    [48, files.valX, files.valY],
  ] as const) {
    const data = new Float32Array(n * FEATURES);
    const labels = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % CLASSES;
      labels[i] = BigInt(label);
      for (let j = 0; j < FEATURES; j++) data[i * FEATURES + j] = (j % CLASSES === label ? 2 : 0) + 0.6 * random.nextNormal();
    }
    await writeNpy(x, { dtype: 'float32', shape: [n, FEATURES], data });
    await writeNpy(y, { dtype: 'int64', shape: [n], data: labels });
  }
  return files;
}
