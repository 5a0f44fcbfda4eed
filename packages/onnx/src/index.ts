export * from './proto.js';
export * from './tensor.js';
export * from './attributes.js';
export * from './graph.js';
export * from './model.js';
export * from './model-problems.js';
export * from './external-data.js';
export * from './atomic-write.js';
export * from './shape-inference.js';
export * from './model-stats.js';
export { type BatchNormFoldReport, foldBatchNormalization } from './transforms/fold-batch-normalization.js';
export { type ConstantFoldOptions, type ConstantFoldReport, foldConstants } from './transforms/fold-constants.js';
export { type DeadNodeReport, removeDeadNodes } from './transforms/remove-dead-nodes.js';
export {
  CONSTANT_FOLDABLE_OPS,
  type ConstantTensor,
  evaluateConstantNode,
  isEvaluableType,
} from './transforms/evaluate-constant-node.js';
export * from './model-summary.js';
