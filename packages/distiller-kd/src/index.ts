import { createRequire } from 'node:module';
import { CommandToken, PassToken, definePlugin, registerFactory } from '@open-autoglm/core';
import { distillCommand } from './distillCommand.js';
import { distillerOptionsSchema } from './distillerOptions.js';
import { KnowledgeDistillationPass } from './KnowledgeDistillationPass.js';

// package.json sits one level above both src/ and dist/.
const manifest = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export { distill, DEFAULT_ALPHA, DEFAULT_TEMPERATURE, type DistillOptions, type DistillResult, type DistillationStop } from './distill.js';
export { removeProjections, setUpFeaturePairs, type FeatureMatching, type FeaturePair, type FeatureSetup, type MatchedFeature } from './featurePairs.js';
export { distillerOptionsSchema, type DistillerOptions, type TunableNumber } from './distillerOptions.js';
export { KnowledgeDistillationPass } from './KnowledgeDistillationPass.js';
// The fake-quantization transform lives in @open-autoglm/onnx (shared with quantizer-int8); kept exported here for existing users.
export { refreezeQuantizedWeights, unfreezeQuantizedWeights, type QuantizedWeights } from '@open-autoglm/onnx';
export { distillCommand } from './distillCommand.js';

/** The knowledge-distillation pass plugin, and the `autoglm distill` command. */
export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'Knowledge distillation (logits, features) that recovers pruned and quantized models from their original',
  provides: [PassToken, CommandToken],
  configSchema: distillerOptionsSchema,
  register(container, options) {
    registerFactory(container, PassToken, () => new KnowledgeDistillationPass(options));
    registerFactory(container, CommandToken, () => distillCommand);
  },
});
