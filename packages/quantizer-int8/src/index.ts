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
