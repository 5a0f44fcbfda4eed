export * from './proto.js';
export * from './tensor.js';
export * from './attributes.js';
export * from './OnnxGraph.js';
export * from './OnnxModel.js';
export * from './makeModel.js';
export * from './findModelProblems.js';
export * from './externalData.js';
export * from './writeFileAtomic.js';
export * from './inferShapes.js';
export * from './countModelStats.js';
export { type BatchNormFoldReport, foldBatchNormalization } from './transforms/foldBatchNormalization.js';
export { type ConstantFoldOptions, type ConstantFoldReport, foldConstants } from './transforms/foldConstants.js';
export { type DeadNodeReport, removeDeadNodes } from './transforms/removeDeadNodes.js';
export {
  CONSTANT_FOLDABLE_OPS,
  type ConstantTensor,
  evaluateConstantNode,
  isEvaluableType,
} from './transforms/evaluateConstantNode.js';
export {
  type FakeQuantizedWeight,
  type FloatBias,
  type QuantizedWeights,
  refreezeQuantizedWeights,
  unfreezeQuantizedWeights,
} from './transforms/unfreezeQuantizedWeights.js';
export * from './summarizeModel.js';
export type * from './autodiff/GradientRule.js';
export * from './autodiff/TrainingStepSpec.js';
export { gradientRules } from './autodiff/rules/index.js';
export { buildTrainingStep, type TrainingStep } from './autodiff/buildTrainingStep.js';
export { initialTrainingState, type TrainingStateTensor } from './autodiff/initialTrainingState.js';
export { type LearningRateSchedule, learningRateAt } from './autodiff/learningRateAt.js';
export { writeTrainedParameters } from './autodiff/writeTrainedParameters.js';
