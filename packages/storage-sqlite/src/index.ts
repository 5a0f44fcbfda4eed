export { SqliteStorage, type SqliteStorageOptions, type StaleTrialOptions } from './SqliteStorage.js';
export { distributionFromOptunaJson, distributionToOptunaJson, fromOptunaInternalValue, toOptunaInternalValue } from './optunaDistribution.js';
export { optunaLibraryVersion, optunaSchemaVersion, optunaTables, supportedAlembicRevisions, writtenAlembicRevision } from './optunaSchema.js';
export { formatPythonJson, parsePythonJson } from './pythonJson.js';
