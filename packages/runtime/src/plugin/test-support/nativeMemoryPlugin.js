// @ts-check
// A pass for the pipeline's memory-limit test, loaded by path from a test config: it takes
// `megabytes` MB of native memory (Buffers' backing stores, outside the JavaScript heap, as
// onnxruntime's tensors are) 16 MB at a time, then returns the model unchanged. One searched
// parameter, so the search has a space to propose from.
import { autoGlmConfigSchema, definePlugin, PassToken, registerValue } from '@open-autoglm/core';

export default definePlugin({
  name: 'native-memory-test-pass',
  version: '1.0.0',
  provides: [PassToken],
  configSchema: autoGlmConfigSchema.shape.search.shape.with,
  register: (container, options) => {
    const megabytes = Number(options['megabytes'] ?? 0);
    /** @type {import('@open-autoglm/core').Pass} */
    const pass = {
      async searchSpace() {
        return [{ name: 'unused', distribution: { kind: /** @type {const} */ ('int'), low: 0, high: 1 } }];
      },
      async apply(model) {
        const held = [];
        // fill() touches every page, so the memory is resident, not merely reserved.
        for (let taken = 0; taken < megabytes; taken += 16) held.push(Buffer.allocUnsafe(16 * 2 ** 20).fill(1));
        return { model, report: { heldMegabytes: held.length * 16 } };
      },
    };
    registerValue(container, PassToken, pass);
  },
});
