import { createRequire } from 'node:module';
import {
  autoGlmConfigSchema,
  DatasetLoaderToken,
  definePlugin,
  EvaluatorToken,
  ModelInspectorToken,
  registerFactory,
  registerValue,
  TargetToken,
} from '@open-autoglm/core';
import { npyDatasetLoader } from './NpyDatasetLoader.js';
import { RuntimeEngine } from './RuntimeEngine.js';

// package.json sits one level above both src/ and dist/ ... and this file is one level deeper.
const manifest = createRequire(import.meta.url)('../../package.json') as { name: string; version: string };

/**
 * The engine as a plugin, so the pipeline (which cannot import the runtime) gets its target,
 * evaluator, dataset loader and model inspector by token. Its options are the config's
 * `target:` section. It is the runtime package's default export: `loadPlugin('@open-autoglm/runtime')`.
 */
export const runtimeEnginePlugin = definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'onnxruntime-node engine: cpu target latency, top-1 accuracy, .npy/.npz datasets, params and MACs',
  provides: [TargetToken, EvaluatorToken, DatasetLoaderToken, ModelInspectorToken],
  configSchema: autoGlmConfigSchema.shape.target,
  register(container, options) {
    const engine = new RuntimeEngine(options);
    registerValue(container, TargetToken, engine);
    registerValue(container, EvaluatorToken, engine);
    registerValue(container, ModelInspectorToken, engine);
    registerFactory(container, DatasetLoaderToken, () => npyDatasetLoader);
  },
});
