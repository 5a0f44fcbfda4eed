import 'reflect-metadata';

export {
  checkPluginConformance,
  pluginConformanceChecks,
  type PluginConformanceCheck,
  type PluginConformanceOptions,
  type PluginConformanceResult,
} from './pluginConformanceChecks.js';
export { frozenTrial } from './frozenTrial.js';
export { runPluginConformance } from './runPluginConformance.js';
export { conformanceParams, runStudyStorageConformance, type StudyStorageConformanceOptions } from './runStudyStorageConformance.js';
