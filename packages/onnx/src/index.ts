export * from './proto.js';
export * from './tensor.js';
export * from './attributes.js';
