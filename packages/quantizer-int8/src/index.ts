import { createRequire } from 'node:module';
import { CommandToken, definePlugin, PassToken, registerFactory } from '@open-autoglm/core';
import { Int8QuantizationPass } from './Int8QuantizationPass.js';
import { quantizeCommand } from './quantizeCommand.js';
import { quantizerOptionsSchema } from './quantizerOptions.js';

// package.json sits one level above both src/ and dist/.
const manifest = createRequire(import.meta.url)('../package.json') as { name: string; version: string };

export * from './quantizationParameters.js';
export { Histogram } from './calibration/Histogram.js';
export { entropyThreshold, mseRange, percentileThreshold } from './calibration/chooseRange.js';
export {
  CALIBRATION_METHODS,
  type CalibratedRange,
  type CalibrationMethod,
  type CalibrationOptions,
  calibrateRanges,
} from './calibration/calibrateRanges.js';
export { checkQuantizable, MIN_QUANTIZATION_OPSET } from './checkQuantizable.js';
export { prepareForQuantization } from './prepareForQuantization.js';
export * from './planStaticQuantization.js';
export * from './insertQdq.js';
export * from './quantizeStatic.js';
export * from './quantizeDynamic.js';
export * from './compareLatency.js';
export * from './measureSqnr.js';
export * from './autoMixedPrecision.js';
export { Int8QuantizationPass, LAYER_PARAMETER_PREFIX } from './Int8QuantizationPass.js';
export { quantizerOptionsSchema, type QuantizerOptions } from './quantizerOptions.js';
export { quantizeCommand } from './quantizeCommand.js';

/** The INT8 quantization pass plugin, and the `autoglm quantize` command. */
export default definePlugin({
  name: manifest.name,
  version: manifest.version,
  description: 'INT8 quantization: static QDQ with calibration, dynamic INT8, accuracy- and latency-aware mixed precision',
  provides: [PassToken, CommandToken],
  configSchema: quantizerOptionsSchema,
  register(container, options) {
    registerFactory(container, PassToken, () => new Int8QuantizationPass(options));
    registerFactory(container, CommandToken, () => quantizeCommand);
  },
});
export * from './quantizationAwareTraining.js';
