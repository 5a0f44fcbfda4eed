import { UnsupportedOperationError } from '@open-autoglm/core';
import { getFloatAttribute, getIntAttribute, makeAttribute } from '../../attributes.js';
import { describeNode } from '../../OnnxGraph.js';
import { DataType } from '../../proto.js';
import type { ForwardRewriteContext, GradientContext, GraphBuilderContext, GradientRuleTable } from '../GradientRule.js';
import { rankOf } from './rankOf.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

function staticDim(c: GraphBuilderContext, name: string, axis: number): number {
  const dim = c.dims(name)?.[axis];
  if (typeof dim !== 'number') {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: dim ${axis} of "${name}" is not a known number. ` +
        'Give the model inputs fixed sizes along the normalized axes and rebuild the step.',
    );
  }
  return dim;
}

/** A per-channel vector [C] reshaped to broadcast against [N, C, ...spatial] ([1, C, 1, ...]). */
function perChannel(c: GraphBuilderContext, vector: string, rank: number): string {
  return c.op('Unsqueeze', [vector, c.ints([0, ...range(2, rank)])]);
}

/**
 * Batch mean and biased variance of BatchNormalization's input over every axis but the
 * channels, kept as [1, C, 1, ...]. The forward rewrite and the backward pass build these same
 * nodes from the same inputs, so onnxruntime's common-subexpression elimination runs them once.
 */
function batchStatistics(c: GraphBuilderContext, x: string, rank: number): { mean: string; variance: string; centered: string } {
  const axes = [0, ...range(2, rank)];
  const mean = c.reduceMean(x, axes, true);
  const centered = c.op('Sub', [x, mean]);
  const variance = c.reduceMean(c.op('Mul', [centered, centered]), axes, true);
  return { mean, variance, centered };
}

/** Elements per channel (the batch size times the spatial size), as a float scalar. */
function elementsPerChannel(c: GraphBuilderContext, x: string, channels: string): string {
  return c.op('Div', [c.op('Cast', [c.op('Size', [x])], { to: DataType.FLOAT }), channels]);
}

/**
 * Training mode: BatchNormalization normalizes with the batch statistics (`training_mode = 1`,
 * which onnxruntime's CPU kernel runs) and the running statistics become buffers updated as
 * PyTorch does, `running = momentum * running + (1 - momentum) * batch` with the unbiased batch
 * variance (ONNX's own training outputs would use the biased one).
 */
function rewriteBatchNormalization(c: ForwardRewriteContext): void {
  if (c.mode !== 'train') return;
  const node = c.node;
  node.attribute = [...node.attribute.filter((a) => a.name !== 'training_mode'), makeAttribute('training_mode', 1)];
  // ONNX requires all three outputs in training mode; its running-statistics outputs stay unread.
  for (const [slot, hint] of [[1, 'running_mean'], [2, 'running_var']] as const) {
    while (node.output.length <= slot) node.output.push('');
    if (node.output[slot] === '') node.output[slot] = c.freshName(`${c.output(0)}/${hint}`);
  }
  const [x, runningMean, runningVariance] = [c.input(0), c.input(3), c.input(4)];
  const rank = rankOf(c, x);
  // onnxruntime's training-mode kernel may write its (biased) running statistics into the
  // buffers of inputs 3 and 4 in place, under the update below that reads them: it gets
  // constants instead, which only feed its unread running-statistics outputs.
  const channels = staticDim(c, runningMean, 0);
  node.input[3] = c.constant(new Float32Array(channels), [channels]);
  node.input[4] = c.constant(new Float32Array(channels).fill(1), [channels]);
  const momentum = getFloatAttribute(node, 'momentum', 0.9);
  const { mean, variance } = batchStatistics(c, x, rank);
  const reducedAxes = c.ints([0, ...range(2, rank)]);
  const batchMean = c.op('Squeeze', [mean, reducedAxes]);
  const count = elementsPerChannel(c, x, c.op('Cast', [c.op('Size', [runningMean])], { to: DataType.FLOAT }));
  const unbiased = c.op('Mul', [c.op('Squeeze', [variance, reducedAxes]), c.op('Div', [count, c.op('Sub', [count, c.scalar(1)])])]);
  const blend = (running: string, batch: string): string =>
    c.op('Add', [c.op('Mul', [running, c.scalar(momentum)]), c.op('Mul', [batch, c.scalar(1 - momentum)])]);
  c.updateBuffer(runningMean, blend(runningMean, batchMean));
  c.updateBuffer(runningVariance, blend(runningVariance, unbiased));
}

/**
 * BatchNormalization's gradients. With batch statistics (training_mode = 1), mu and var depend
 * on X: xhat = (X - mu) r, r = 1/sqrt(var + eps), m elements per channel,
 * dgamma = sum(dY xhat), dbeta = sum(dY), dX = gamma r (dY - dbeta/m - xhat dgamma/m).
 * With frozen statistics: dX = dY gamma r and xhat uses the running statistics.
 */
function batchNormalizationBackward(c: GradientContext): ReadonlyArray<string | undefined> {
  const dY = c.outputGradient(0);
  if (dY === undefined) return [];
  const [x, scale] = [c.input(0), c.input(1)];
  const rank = rankOf(c, x);
  const axes = [0, ...range(2, rank)];
  const epsilon = c.scalar(getFloatAttribute(c.node, 'epsilon', 1e-5));
  const training = getIntAttribute(c.node, 'training_mode', 0) === 1;
  let centered: string;
  let inverseStd: string;
  if (training) {
    const statistics = batchStatistics(c, x, rank);
    centered = statistics.centered;
    inverseStd = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [statistics.variance, epsilon])])]);
  } else {
    centered = c.op('Sub', [x, perChannel(c, c.input(3), rank)]);
    inverseStd = c.op('Reciprocal', [c.op('Sqrt', [c.op('Add', [perChannel(c, c.input(4), rank), epsilon])])]);
  }
  const needsStatistics = c.needsGradient(1) || (training && c.needsGradient(0));
  const normalized = needsStatistics ? c.op('Mul', [centered, inverseStd]) : '';
  const dBeta = c.needsGradient(2) || (training && c.needsGradient(0)) ? c.reduceSum(dY, axes, false) : undefined;
  const dGamma = needsStatistics ? c.reduceSum(c.op('Mul', [dY, normalized]), axes, false) : undefined;
  let dX: string | undefined;
  if (c.needsGradient(0)) {
    const gain = c.op('Mul', [perChannel(c, scale, rank), inverseStd]); // [1, C, 1, ...]
    if (!training) {
      dX = c.op('Mul', [dY, gain]);
    } else {
      const count = elementsPerChannel(c, x, c.op('Cast', [c.op('Size', [scale])], { to: DataType.FLOAT }));
      const meanDBeta = perChannel(c, c.op('Div', [dBeta as string, count]), rank);
      const meanDGamma = perChannel(c, c.op('Div', [dGamma as string, count]), rank);
      const inner = c.op('Sub', [c.op('Sub', [dY, meanDBeta]), c.op('Mul', [normalized, meanDGamma])]);
      dX = c.op('Mul', [inner, gain]);
    }
  }
  return [dX, c.needsGradient(1) ? dGamma : undefined, c.needsGradient(2) ? dBeta : undefined];
}

/** LayerNormalization needs its Mean and InvStdDev outputs for the backward pass; it computes them anyway. */
function rewriteLayerNormalization(c: ForwardRewriteContext): void {
  const node = c.node;
  for (const [slot, hint] of [[1, 'mean'], [2, 'inv_std_dev']] as const) {
    while (node.output.length <= slot) node.output.push('');
    if (node.output[slot] === '') node.output[slot] = c.freshName(`${c.output(0)}/${hint}`);
  }
}

/**
 * LayerNormalization over the axes from `axis` on: with xhat = (X - mean) inv and g = dY gamma,
 * dX = inv (g - mean(g) - xhat mean(g xhat)) over the normalized axes; dgamma and dbeta sum
 * dY xhat and dY over the leading axes (and any axes gamma broadcasts along). Gradients that
 * reach the Mean and InvStdDev outputs are added to dX.
 */
function layerNormalizationBackward(c: GradientContext): ReadonlyArray<string | undefined> {
  const dY = c.outputGradient(0);
  const [x, scale, bias] = [c.input(0), c.input(1), c.input(2)];
  const [mean, inverseStd] = [c.output(1), c.output(2)];
  if (mean === '' || inverseStd === '') {
    throw new UnsupportedOperationError(
      `Cannot build the gradient of ${describeNode(c.node)}: its Mean and InvStdDev outputs are missing (the forward rewrite adds them). ` +
        'Build the step with buildTrainingStep, which applies the rewrite.',
    );
  }
  const rank = rankOf(c, x);
  const axis = getIntAttribute(c.node, 'axis', -1);
  const normalizedAxes = range(axis < 0 ? axis + rank : axis, rank);
  const normalized = c.op('Mul', [c.op('Sub', [x, mean]), inverseStd]);
  let dX: string | undefined;
  if (c.needsGradient(0)) {
    const parts: string[] = [];
    if (dY !== undefined) {
      const scaled = c.op('Mul', [dY, scale]);
      const meanScaled = c.reduceMean(scaled, normalizedAxes, true);
      const meanProjection = c.reduceMean(c.op('Mul', [scaled, normalized]), normalizedAxes, true);
      const inner = c.op('Sub', [c.op('Sub', [scaled, meanScaled]), c.op('Mul', [normalized, meanProjection])]);
      parts.push(c.op('Mul', [inner, inverseStd]));
    }
    // When the model reads Mean or InvStdDev too: d mean/dX = 1/n, d inv/dX = -inv^2 xhat / n.
    const dMean = c.outputGradient(1);
    const dInverseStd = c.outputGradient(2);
    if (dMean !== undefined || dInverseStd !== undefined) {
      const count = normalizedAxes.reduce((product, a) => product * staticDim(c, x, a), 1);
      if (dMean !== undefined) parts.push(c.op('Expand', [c.op('Mul', [dMean, c.scalar(1 / count)]), c.shape(x)]));
      if (dInverseStd !== undefined) {
        const slope = c.op('Mul', [c.op('Mul', [inverseStd, inverseStd]), c.scalar(-1 / count)]);
        parts.push(c.op('Mul', [c.op('Mul', [dInverseStd, slope]), normalized]));
      }
    }
    dX = parts.length === 1 ? parts[0] : c.op('Sum', parts);
  }
  return [
    dX,
    dY !== undefined && c.needsGradient(1) ? c.reduceToShapeOf(c.op('Mul', [dY, normalized]), scale) : undefined,
    dY !== undefined && bias !== '' && c.needsGradient(2) ? c.reduceToShapeOf(dY, bias) : undefined,
  ];
}

/**
 * Gradients of BatchNormalization (batch statistics in `train` mode, with the running
 * statistics updated as buffers; frozen running statistics in `eval` mode) and
 * LayerNormalization (any axis, scale and bias broadcast as ONNX allows).
 */
export const normalizationGradients: GradientRuleTable = {
  BatchNormalization: { rewriteForward: rewriteBatchNormalization, backward: batchNormalizationBackward },
  LayerNormalization: { rewriteForward: rewriteLayerNormalization, backward: layerNormalizationBackward },
};
