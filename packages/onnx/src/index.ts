export * from './proto.js';
export * from './tensor.js';
export * from './attributes.js';
export * from './graph.js';
export * from './model.js';
export * from './model-problems.js';
export * from './external-data.js';
export * from './atomic-write.js';
