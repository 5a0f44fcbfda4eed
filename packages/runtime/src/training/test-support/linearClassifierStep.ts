import { create } from '@bufbuild/protobuf';
import { SeededRandom } from '@open-autoglm/core';
import {
  arrayToTensor,
  DataType,
  makeNode,
  makeTensorValueInfo,
  ModelProtoSchema,
  OnnxModel,
  StringStringEntryProtoSchema,
  TRAINING_STEP_METADATA_KEY,
  type TrainingStepSignature,
} from '@open-autoglm/onnx';

/**
 * A linear softmax classifier, logits = (x - center) W^T + b, with its training step written by
 * hand (no autodiff), following the `TrainingStepSignature` contract of `buildTrainingStep`:
 * cross-entropy loss, SGD with momentum (PyTorch semantics, dampening 0), and `center` as a
 * buffer updated like a BatchNorm running mean (0.9 old + 0.1 batch mean). It lets the Trainer be
 * tested on its own, and its gradient is simple enough to check by hand.
 */
export interface LinearClassifier {
  /** The inference model. */
  readonly model: OnnxModel;
  /** The training step for it. */
  readonly step: OnnxModel;
  readonly signature: TrainingStepSignature;
}

export function linearClassifierStep(features: number, classes: number, options: { momentum?: number; seed?: number } = {}): LinearClassifier {
  const momentum = options.momentum ?? 0.9;
  const random = new SeededRandom(options.seed ?? 0);
  const weight = Float32Array.from({ length: classes * features }, () => (random.nextFloat() - 0.5) * 0.2);
  const bias = new Float32Array(classes);
  const center = new Float32Array(features);
  const opset = [{ domain: '', version: 17n }];
  const initializers = () => [
    arrayToTensor('W', weight, [classes, features]),
    arrayToTensor('b', bias, [classes]),
    arrayToTensor('center', center, [features]),
  ];

  const model = new OnnxModel(
    create(ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: opset,
      graph: {
        name: 'linear',
        node: [makeNode('Sub', ['x', 'center'], ['xc']), makeNode('Gemm', ['xc', 'W', 'b'], ['logits'], { transB: 1 })],
        input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', features])],
        output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', classes])],
        initializer: initializers(),
      },
    }),
  );

  const f = (name: string, dims: (number | string)[]) => makeTensorValueInfo(name, DataType.FLOAT, dims);
  const constants = [
    arrayToTensor('zero_axis', new BigInt64Array([0n]), [1]),
    arrayToTensor('class_axis', new BigInt64Array([1n]), [1]),
    arrayToTensor('depth', new BigInt64Array([BigInt(classes)]), [1]),
    arrayToTensor('off_on', new Float32Array([0, 1]), [2]),
    arrayToTensor('mu', new Float32Array([momentum]), []),
    arrayToTensor('keep', new Float32Array([0.9]), []),
    arrayToTensor('blend', new Float32Array([0.1]), []),
  ];
  const nodes = [
    makeNode('Sub', ['x', 'center'], ['xc']),
    makeNode('Gemm', ['xc', 'W', 'b'], ['logits'], { transB: 1 }),
    // loss = mean over the batch of -sum(onehot * log_softmax(logits))
    makeNode('LogSoftmax', ['logits'], ['logp'], { axis: 1 }),
    makeNode('OneHot', ['labels', 'depth', 'off_on'], ['onehot'], { axis: 1 }),
    makeNode('Mul', ['onehot', 'logp'], ['picked']),
    makeNode('ReduceSum', ['picked', 'class_axis'], ['row_logp'], { keepdims: 0 }),
    makeNode('ReduceMean', ['row_logp'], ['mean_logp'], { keepdims: 0 }),
    makeNode('Neg', ['mean_logp'], ['loss']),
    // correct = count(argmax(logits) == labels)
    makeNode('ArgMax', ['logits'], ['predicted'], { axis: 1, keepdims: 0 }),
    makeNode('Equal', ['predicted', 'labels'], ['hits']),
    makeNode('Cast', ['hits'], ['hits64'], { to: DataType.INT64 }),
    makeNode('ReduceSum', ['hits64'], ['correct'], { keepdims: 0 }),
    // dlogits = (softmax - onehot) / batch
    makeNode('Softmax', ['logits'], ['p'], { axis: 1 }),
    makeNode('Sub', ['p', 'onehot'], ['residual']),
    makeNode('Shape', ['x'], ['x_shape'], { start: 0, end: 1 }),
    makeNode('Cast', ['x_shape'], ['batch_f'], { to: DataType.FLOAT }),
    makeNode('Div', ['residual', 'batch_f'], ['dlogits']),
    makeNode('Gemm', ['dlogits', 'xc'], ['dW'], { transA: 1 }),
    makeNode('ReduceSum', ['dlogits', 'zero_axis'], ['db'], { keepdims: 0 }),
    // SGD with momentum: buf = mu * buf + g; p -= lr * buf
    makeNode('Mul', ['mu', 'W.momentum'], ['W_mom_scaled']),
    makeNode('Add', ['W_mom_scaled', 'dW'], ['W.momentum.updated']),
    makeNode('Mul', ['lr', 'W.momentum.updated'], ['W_delta']),
    makeNode('Sub', ['W', 'W_delta'], ['W.updated']),
    makeNode('Mul', ['mu', 'b.momentum'], ['b_mom_scaled']),
    makeNode('Add', ['b_mom_scaled', 'db'], ['b.momentum.updated']),
    makeNode('Mul', ['lr', 'b.momentum.updated'], ['b_delta']),
    makeNode('Sub', ['b', 'b_delta'], ['b.updated']),
    // running center: 0.9 old + 0.1 batch mean
    makeNode('ReduceMean', ['x'], ['x_mean'], { axes: [0], keepdims: 0 }),
    makeNode('Mul', ['keep', 'center'], ['center_kept']),
    makeNode('Mul', ['blend', 'x_mean'], ['center_new']),
    makeNode('Add', ['center_kept', 'center_new'], ['center.updated']),
  ];
  const signature: TrainingStepSignature = {
    version: 1,
    mode: 'train',
    optimizer: { kind: 'sgd', momentum, dampening: 0, nesterov: false, weightDecay: 0 },
    lossTerms: [{ kind: 'crossEntropy' }],
    parameters: [
      { name: 'W', initializer: 'W', updated: 'W.updated', dims: [classes, features], state: [{ slot: 'momentum', name: 'W.momentum', updated: 'W.momentum.updated', dims: [classes, features] }] },
      { name: 'b', initializer: 'b', updated: 'b.updated', dims: [classes], state: [{ slot: 'momentum', name: 'b.momentum', updated: 'b.momentum.updated', dims: [classes] }] },
    ],
    buffers: [{ name: 'center', updated: 'center.updated', dims: [features] }],
    frozen: [],
    unused: [],
    step: 'step',
    learningRate: 'lr',
    batchInputs: [{ name: 'x', type: 'float32', dims: ['batch', features] }],
    labels: { name: 'labels', type: 'int64', dims: ['batch'] },
    teacherFeatures: [],
    loss: 'loss',
    correct: 'correct',
    logits: 'logits',
  };
  const step = new OnnxModel(
    create(ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: opset,
      metadataProps: [create(StringStringEntryProtoSchema, { key: TRAINING_STEP_METADATA_KEY, value: JSON.stringify(signature) })],
      graph: {
        name: 'linear_step',
        node: nodes,
        input: [
          f('W', [classes, features]),
          f('b', [classes]),
          f('W.momentum', [classes, features]),
          f('b.momentum', [classes]),
          f('center', [features]),
          makeTensorValueInfo('step', DataType.INT64, []),
          f('lr', []),
          f('x', ['batch', features]),
          makeTensorValueInfo('labels', DataType.INT64, ['batch']),
        ],
        output: [
          f('loss', []),
          makeTensorValueInfo('correct', DataType.INT64, []),
          f('W.updated', [classes, features]),
          f('b.updated', [classes]),
          f('W.momentum.updated', [classes, features]),
          f('b.momentum.updated', [classes]),
          f('center.updated', [features]),
        ],
        initializer: constants,
      },
    }),
  );
  return { model, step, signature };
}
