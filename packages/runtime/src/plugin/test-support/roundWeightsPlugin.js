// @ts-check
// A small real pass for pipeline tests, loaded by path from a test config (plain JavaScript, so
// Node.js imports it without a build, in vitest and in the built CLI alike): it rounds each
// Conv/Gemm weight to a symmetric grid of `bits.<node>` bits (values stay float32). Fewer bits
// lose accuracy, as quantization does, so a search has something real to trade; file size and
// latency do not change.
import { autoGlmConfigSchema, definePlugin, PassToken, registerValue } from '@open-autoglm/core';
import { arrayToTensor, OnnxModel, tensorDims, tensorToArray } from '@open-autoglm/onnx';

/** @type {import('@open-autoglm/core').Pass} */
const roundWeightsPass = {
  async searchSpace(model) {
    const onnx = OnnxModel.fromBytes(model.bytes, { source: model.path });
    return onnx.graph.nodes
      .filter((node) => (node.opType === 'Conv' || node.opType === 'Gemm') && node.input[1] !== undefined && onnx.graph.getInitializer(node.input[1]) !== undefined)
      .map((node) => ({ name: `bits.${node.name}`, layer: node.name, distribution: { kind: /** @type {const} */ ('int'), low: 3, high: 8 } }));
  },
  async apply(model, params) {
    const onnx = OnnxModel.fromBytes(model.bytes, { source: model.path });
    let rounded = 0;
    for (const node of onnx.graph.nodes) {
      const bits = params[`bits.${node.name}`];
      const weightName = node.input[1];
      if (typeof bits !== 'number' || weightName === undefined) continue;
      const weight = onnx.graph.getInitializer(weightName);
      if (weight === undefined) continue;
      const values = Float32Array.from(/** @type {Float32Array} */ (tensorToArray(weight)));
      const levels = 2 ** (bits - 1) - 1;
      const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / levels;
      if (scale > 0) for (let i = 0; i < values.length; i++) values[i] = Math.round((values[i] ?? 0) / scale) * scale;
      onnx.graph.setInitializer(arrayToTensor(weightName, values, tensorDims(weight)));
      rounded++;
    }
    return { model: { path: model.path, bytes: onnx.toBytes() }, report: { rounded } };
  },
};

export default definePlugin({
  name: 'round-weights-test-pass',
  version: '1.0.0',
  provides: [PassToken],
  // It takes no options: the config's generic `with:` schema (runtime does not depend on zod itself).
  configSchema: autoGlmConfigSchema.shape.search.shape.with,
  register: (container) => registerValue(container, PassToken, roundWeightsPass),
});
