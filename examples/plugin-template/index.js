// @ts-check
// A third-party Open-AutoGLM plugin in one file: copy this folder, rename the package, and
// replace the pass. Plain JavaScript with JSDoc types, so Node.js loads it without a build step.
import { PassToken, definePlugin, registerFactory } from '@open-autoglm/core';
import { OnnxModel, foldBatchNormalization, removeDeadNodes } from '@open-autoglm/onnx';
import * as z from 'zod';
import manifest from './package.json' with { type: 'json' };

/** The plugin's `with:` options. Strict: a misspelt key is an error, not silently ignored. */
const optionsSchema = z.strictObject({
  /** Also remove nodes and initializers that no longer feed an output. */
  removeDeadNodes: z.boolean().default(true),
});

/** @typedef {z.output<typeof optionsSchema>} FoldBatchNormOptions */

/**
 * The pass: folds every BatchNormalization that follows a Conv, ConvTranspose or Gemm into its
 * weights and bias. It has nothing to tune, so its search space is empty.
 * @param {FoldBatchNormOptions} options
 * @returns {import('@open-autoglm/core').Pass}
 */
function createFoldBatchNormPass(options) {
  return {
    async searchSpace() {
      return [];
    },
    async apply(model) {
      const onnx = OnnxModel.fromBytes(model.bytes, { source: model.path });
      const folding = foldBatchNormalization(onnx.proto);
      const cleanup = options.removeDeadNodes ? removeDeadNodes(onnx.proto) : undefined;
      onnx.graph.invalidate();
      return {
        model: { path: model.path, bytes: onnx.toBytes() },
        report: {
          folded: folding.folded,
          notFolded: folding.notFolded.map((n) => `${n.batchNorm}: ${n.reason}`),
          removedNodes: cleanup?.removedNodes.length ?? 0,
        },
      };
    },
  };
}

export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'folds BatchNormalization into the preceding Conv/Gemm (a plugin template)',
  provides: [PassToken],
  configSchema: optionsSchema,
  register(container, options) {
    registerFactory(container, PassToken, () => createFoldBatchNormPass(options));
  },
});
