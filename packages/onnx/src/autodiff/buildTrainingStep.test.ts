import { ConfigError, UnsupportedOperationError } from '@open-autoglm/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { OnnxModel } from '../OnnxModel.js';
import { DataType, type ModelProto, type TensorProto } from '../proto.js';
import { arrayToTensor, tensorToArray } from '../tensor.js';
import { buildModel, randomArray } from '../test-support/testModels.js';
import { buildTrainingStep } from './buildTrainingStep.js';
import { initialTrainingState } from './initialTrainingState.js';
import { scalarOf, StepRunner } from './test-support/StepRunner.js';
import type { GradientRuleTable } from './GradientRule.js';
import { checkModelGradients } from './test-support/checkModelGradients.js';
import { describeTrainingStep, type LossTerm, type OptimizerSpec } from './TrainingStepSpec.js';
import { writeTrainedParameters } from './writeTrainedParameters.js';

const [BATCH, FEATURES, HIDDEN, CLASSES] = [5, 6, 8, 4];

/** x [batch, 6] -> Gemm(w1, b1) -> Relu -> Gemm(w2, b2) -> logits [batch, 4]. */
function mlp(opset = 17): ModelProto {
  return buildModel({
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', FEATURES] }],
    outputs: ['logits'],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attributes: { transB: 1 }, name: 'fc1' },
      { op: 'Relu', inputs: ['h'], outputs: ['a'], name: 'relu1' },
      { op: 'Gemm', inputs: ['a', 'w2', 'b2'], outputs: ['logits'], attributes: { transB: 1 }, name: 'fc2' },
    ],
    initializers: [
      arrayToTensor('w1', randomArray(HIDDEN * FEATURES, 1).map((v) => v * 0.6), [HIDDEN, FEATURES]),
      arrayToTensor('b1', randomArray(HIDDEN, 2).map((v) => v * 0.1), [HIDDEN]),
      arrayToTensor('w2', randomArray(CLASSES * HIDDEN, 3).map((v) => v * 0.5), [CLASSES, HIDDEN]),
      arrayToTensor('b2', randomArray(CLASSES, 4).map((v) => v * 0.1), [CLASSES]),
    ],
    opset,
  });
}

function batchOf(size: number, seed = 10): Record<string, ort.Tensor> {
  return { x: new ort.Tensor('float32', randomArray(size * FEATURES, seed).map((v) => v * 2), [size, FEATURES]) };
}

function labelsOf(size: number): BigInt64Array {
  return BigInt64Array.from({ length: size }, (_, i) => BigInt((i * 3 + 1) % CLASSES));
}

/** logits = x * s elementwise, s a [B, C] parameter: the gradient of s is dL/dlogits * x. */
function scaledLogits(): ModelProto {
  return buildModel({
    inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [BATCH, CLASSES] }],
    outputs: ['logits'],
    nodes: [{ op: 'Mul', inputs: ['x', 's'], outputs: ['logits'], name: 'scale' }],
    initializers: [arrayToTensor('s', randomArray(BATCH * CLASSES, 5).map((v) => v * 2), [BATCH, CLASSES])],
  });
}

function logSoftmax(row: readonly number[]): number[] {
  const max = Math.max(...row);
  const sum = row.reduce((acc, v) => acc + Math.exp(v - max), 0);
  return row.map((v) => v - max - Math.log(sum));
}

/** The loss of `terms` in float64, from logits z [B, C] (rows), written from the definitions. */
function referenceLoss(terms: readonly LossTerm[], z: number[][], labels: BigInt64Array, teacher: number[][], s: Float64Array): number {
  let total = 0;
  const crossEntropy = (): number => z.reduce((acc, row, i) => acc - (logSoftmax(row)[Number(labels[i])] as number), 0) / z.length;
  for (const term of terms) {
    if (term.kind === 'crossEntropy') total += (term.weight ?? 1) * crossEntropy();
    if (term.kind === 'distillation') {
      const t = term.temperature;
      let kl = 0;
      z.forEach((row, i) => {
        const q = logSoftmax(row.map((v) => v / t));
        const p = logSoftmax((teacher[i] as number[]).map((v) => v / t));
        p.forEach((lp, j) => {
          kl += Math.exp(lp) * (lp - (q[j] as number));
        });
      });
      total += (term.weight ?? 1) * (term.alpha * t * t * (kl / z.length) + (1 - term.alpha) * (term.alpha < 1 ? crossEntropy() : 0));
    }
    if (term.kind === 'mse') {
      let sum = 0;
      z.forEach((row, i) => row.forEach((v, j) => (sum += (v - (teacher[i]?.[j] as number)) ** 2)));
      total += (term.weight ?? 1) * (sum / (z.length * CLASSES));
    }
    if (term.kind === 'weightDecay') total += (term.coefficient / 2) * s.reduce((acc, v) => acc + v * v, 0);
  }
  return total;
}

/** Builds the scaled-logits step for `terms`, runs it once, and checks loss and gradient against float64 references. */
async function checkLoss(terms: readonly LossTerm[]): Promise<{ lossError: number; gradientError: number }> {
  const model = scaledLogits();
  const { model: step, signature } = buildTrainingStep(model, { loss: terms, optimizer: { kind: 'sgd' }, exposeGradients: true });
  const x = randomArray(BATCH * CLASSES, 21).map((v) => 1 + v / 2);
  const teacherValues = randomArray(BATCH * CLASSES, 22).map((v) => v * 3);
  const labels = labelsOf(BATCH);
  const s0 = initialTrainingState(model, signature).get('s')?.data as Float32Array;
  const rows = (flat: ArrayLike<number>): number[][] => Array.from({ length: BATCH }, (_, i) => Array.from({ length: CLASSES }, (_, j) => flat[i * CLASSES + j] as number));
  const lossAt = (s: Float64Array): number => referenceLoss(terms, rows(s.map((v, i) => v * (x[i] as number))), labels, rows(teacherValues), s);

  const batch: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [BATCH, CLASSES]) };
  if (signature.labels !== undefined) batch[signature.labels.name] = new ort.Tensor('int64', labels, [BATCH]);
  if (signature.teacherLogits !== undefined) batch[signature.teacherLogits.name] = new ort.Tensor('float32', teacherValues, [BATCH, CLASSES]);
  for (const teacher of signature.teacherFeatures) batch[teacher.name] = new ort.Tensor('float32', teacherValues, [BATCH, CLASSES]);
  const runner = await StepRunner.create(step, signature, model);
  try {
    const outputs = await runner.evaluate(batch);
    const base = Float64Array.from(s0);
    const expectedLoss = lossAt(base);
    const lossError = Math.abs(scalarOf(outputs[signature.loss]) - expectedLoss) / Math.abs(expectedLoss);
    const analytic = outputs[signature.parameters[0]?.gradient as string]?.data as Float32Array;
    let difference = 0;
    let scale = 0;
    for (let j = 0; j < base.length; j++) {
      const h = 1e-6;
      const plus = Float64Array.from(base);
      plus[j] = (base[j] as number) + h;
      const minus = Float64Array.from(base);
      minus[j] = (base[j] as number) - h;
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * h);
      difference = Math.max(difference, Math.abs((analytic[j] as number) - numeric));
      scale = Math.max(scale, Math.abs(numeric));
    }
    return { lossError, gradientError: difference / scale };
  } finally {
    await runner.release();
  }
}

describe('buildTrainingStep', () => {
  describe('losses', () => {
    const cases: [string, LossTerm[]][] = [
      ['cross-entropy', [{ kind: 'crossEntropy' }]],
      ['distillation mixed with cross-entropy', [{ kind: 'distillation', temperature: 3, alpha: 0.6 }]],
      ['distillation alone (alpha 1)', [{ kind: 'distillation', temperature: 2, alpha: 1 }]],
      ['mean squared error', [{ kind: 'mse', pairs: [{ student: 'logits' }] }]],
      ['weight decay', [{ kind: 'crossEntropy' }, { kind: 'weightDecay', coefficient: 0.1 }]],
      ['weighted terms', [{ kind: 'crossEntropy', weight: 0.5 }, { kind: 'mse', pairs: [{ student: 'logits' }], weight: 2 }]],
    ];
    for (const [name, terms] of cases) {
      it(`should compute the ${name} loss and its gradient as the float64 reference does`, async () => {
        const { lossError, gradientError } = await checkLoss(terms);
        expect(lossError).toBeLessThan(1e-6);
        expect(gradientError).toBeLessThan(1e-5);
      });
    }

    it('should take labels only when a term needs them, and count correct predictions', async () => {
      const { signature: distilled } = buildTrainingStep(mlp(), { loss: [{ kind: 'distillation', temperature: 4, alpha: 1 }], optimizer: { kind: 'sgd' } });
      expect(distilled.labels).toBeUndefined();
      expect(distilled.correct).toBeUndefined();
      expect(distilled.teacherLogits).toEqual({ name: 'teacher_logits', type: 'float32', dims: ['batch', CLASSES] });

      const { model, signature } = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } });
      expect(signature.labels).toEqual({ name: 'labels', type: 'int64', dims: ['batch'] });
      const runner = await StepRunner.create(model, signature, mlp());
      const forward = await ort.InferenceSession.create(new OnnxModel(mlp()).toBytes());
      try {
        const batch = batchOf(BATCH);
        const logits = (await forward.run(batch)).logits?.data as Float32Array;
        const labels = labelsOf(BATCH);
        let expected = 0;
        for (let i = 0; i < BATCH; i++) {
          const row = Array.from(logits.subarray(i * CLASSES, (i + 1) * CLASSES));
          if (row.indexOf(Math.max(...row)) === Number(labels[i])) expected++;
        }
        const outputs = await runner.evaluate({ ...batch, labels: new ort.Tensor('int64', labels, [BATCH]) });
        expect(scalarOf(outputs[signature.correct as string])).toBe(expected);
      } finally {
        await runner.release();
        await forward.release();
      }
    });

    it('should reject invalid loss terms with a ConfigError', () => {
      const build = (loss: LossTerm[]) => () => buildTrainingStep(mlp(), { loss, optimizer: { kind: 'sgd' } });
      expect(build([])).toThrow(ConfigError);
      expect(build([{ kind: 'distillation', temperature: 0, alpha: 0.5 }])).toThrow(/temperature/);
      expect(build([{ kind: 'distillation', temperature: 2, alpha: 1.5 }])).toThrow(/alpha/);
      expect(build([{ kind: 'mse', pairs: [{ student: 'nope' }] }])).toThrow(/student tensor "nope"/);
      expect(build([{ kind: 'weightDecay', coefficient: 0.1, parameters: ['x'] }])).toThrow(/not a trainable parameter/);
    });
  });

  describe('optimizers', () => {
    /** One PyTorch optimizer update in float64, written from the torch.optim documentation's pseudo-code. */
    function referenceUpdate(
      optimizer: OptimizerSpec,
      t: number,
      lr: number,
      p: Float64Array,
      g0: Float32Array,
      state: Map<string, Float64Array>,
    ): Float64Array {
      const out = new Float64Array(p.length);
      if (optimizer.kind === 'sgd') {
        const { momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = optimizer;
        const b = state.get('momentum') ?? new Float64Array(p.length);
        for (let i = 0; i < p.length; i++) {
          let g = (g0[i] as number) + weightDecay * (p[i] as number);
          if (momentum !== 0) {
            b[i] = t > 1 ? momentum * (b[i] as number) + (1 - dampening) * g : g;
            g = nesterov ? g + momentum * (b[i] as number) : (b[i] as number);
          }
          out[i] = (p[i] as number) - lr * g;
        }
        state.set('momentum', b);
        return out;
      }
      const { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = optimizer;
      const weightDecay = optimizer.weightDecay ?? (optimizer.kind === 'adamw' ? 0.01 : 0);
      const m = state.get('m') ?? new Float64Array(p.length);
      const v = state.get('v') ?? new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        let theta = p[i] as number;
        let g = g0[i] as number;
        if (optimizer.kind === 'adamw') theta -= lr * weightDecay * theta;
        else g += weightDecay * theta;
        m[i] = beta1 * (m[i] as number) + (1 - beta1) * g;
        v[i] = beta2 * (v[i] as number) + (1 - beta2) * g * g;
        const mHat = (m[i] as number) / (1 - beta1 ** t);
        const vHat = (v[i] as number) / (1 - beta2 ** t);
        out[i] = theta - (lr * mHat) / (Math.sqrt(vHat) + epsilon);
      }
      state.set('m', m);
      state.set('v', v);
      return out;
    }

    const optimizers: OptimizerSpec[] = [
      { kind: 'sgd' },
      { kind: 'sgd', momentum: 0.9 },
      { kind: 'sgd', momentum: 0.8, dampening: 0.3, weightDecay: 0.01 },
      { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
      { kind: 'adam' },
      { kind: 'adam', beta1: 0.8, beta2: 0.99, weightDecay: 0.01 },
      { kind: 'adamw' },
      { kind: 'adamw', weightDecay: 0.1, epsilon: 1e-6 },
    ];
    for (const optimizer of optimizers) {
      it(`should update parameters and state as PyTorch's ${JSON.stringify(optimizer)} does`, async () => {
        const { model, signature } = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer, exposeGradients: true });
        const runner = await StepRunner.create(model, signature, mlp());
        const reference = new Map<string, Float64Array>(
          signature.parameters.map((p) => [p.name, Float64Array.from(runner.state.get(p.name)?.data as Float32Array)]),
        );
        const referenceState = new Map(signature.parameters.map((p) => [p.name, new Map<string, Float64Array>()]));
        const expectedState = optimizer.kind === 'sgd' ? ((optimizer.momentum ?? 0) > 0 ? ['momentum'] : []) : ['exp_avg', 'exp_avg_sq'];
        expect(signature.parameters.every((p) => p.state.map((s) => s.slot).join() === expectedState.join())).toBe(true);
        let worst = 0;
        try {
          for (let t = 1; t <= 4; t++) {
            const lr = 0.05 / t;
            const outputs = await runner.step({ ...batchOf(BATCH, t), labels: new ort.Tensor('int64', labelsOf(BATCH), [BATCH]) }, lr);
            for (const parameter of signature.parameters) {
              const gradient = outputs[parameter.gradient as string]?.data as Float32Array;
              const next = referenceUpdate(optimizer, t, lr, reference.get(parameter.name) as Float64Array, gradient, referenceState.get(parameter.name) as Map<string, Float64Array>);
              reference.set(parameter.name, next);
              const actual = outputs[parameter.updated]?.data as Float32Array;
              const scale = Math.max(...Array.from(next, Math.abs));
              next.forEach((v, i) => {
                worst = Math.max(worst, Math.abs(v - (actual[i] as number)) / scale);
              });
            }
          }
        } finally {
          await runner.release();
        }
        expect(worst).toBeLessThan(1e-5);
      });
    }

    it('should lower the loss over a few SGD steps on one batch', async () => {
      const { model, signature } = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd', momentum: 0.9 } });
      const runner = await StepRunner.create(model, signature, mlp());
      const batch = { ...batchOf(8), labels: new ort.Tensor('int64', labelsOf(8), [8]) };
      try {
        const losses: number[] = [];
        for (let t = 0; t < 10; t++) losses.push(scalarOf((await runner.step(batch, 0.1))[signature.loss]));
        expect(losses[9]).toBeLessThan((losses[0] as number) * 0.7);
      } finally {
        await runner.release();
      }
    });

    it('should reject optimizer settings PyTorch rejects', () => {
      const build = (optimizer: OptimizerSpec) => () => buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer });
      expect(build({ kind: 'sgd', nesterov: true })).toThrow(/nesterov needs momentum/);
      expect(build({ kind: 'sgd', momentum: -1 })).toThrow(ConfigError);
      expect(build({ kind: 'adam', beta1: 1 })).toThrow(/beta1 must be in \[0, 1\)/);
    });
  });

  describe('graph', () => {
    it('should build a valid model whose signature survives saving and runs at any batch size', async () => {
      const { model, signature } = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adamw' } });
      expect(model.problems()).toEqual([]);
      expect(model.opsetVersion()).toBe(17);
      const reloaded = OnnxModel.fromBytes(model.toBytes());
      expect(describeTrainingStep(reloaded)).toEqual(signature);
      expect(signature.parameters.map((p) => p.name)).toEqual(['w1', 'b1', 'w2', 'b2']);
      expect(signature.batchInputs).toEqual([{ name: 'x', type: 'float32', dims: ['batch', FEATURES] }]);
      const inputs = new Set(reloaded.proto.graph?.input.map((i) => i.name));
      const outputs = reloaded.proto.graph?.output.map((o) => o.name) ?? [];
      for (const parameter of signature.parameters) {
        expect(inputs.has(parameter.name)).toBe(true);
        for (const slot of parameter.state) expect(inputs.has(slot.name) && outputs.includes(slot.updated)).toBe(true);
      }
      expect(outputs.slice(0, 2)).toEqual([signature.loss, signature.correct]);
      expect(outputs.some((name) => inputs.has(name))).toBe(false);
      const runner = await StepRunner.create(reloaded, signature, mlp());
      try {
        for (const size of [1, 3, 16]) {
          const outputs = await runner.step({ ...batchOf(size), labels: new ort.Tensor('int64', labelsOf(size), [size]) }, 0.01);
          expect(Number.isFinite(scalarOf(outputs[signature.loss]))).toBe(true);
        }
      } finally {
        await runner.release();
      }
    });

    it('should say which nodes lack a gradient rule, and need none off the trainable path', () => {
      const withSin = (before: boolean): ModelProto => {
        const model = mlp();
        const graph = model.graph;
        if (graph === undefined) throw new Error('no graph');
        // Sin on the input (no parameter before it) or between the two layers.
        const sin = { op: 'Sin', at: before ? 'x' : 'a' };
        const rebuilt = buildModel({
          inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', FEATURES] }],
          outputs: ['logits'],
          nodes: [
            ...(before ? [{ op: sin.op, inputs: ['x'], outputs: ['xs'], name: 'wave' }] : []),
            { op: 'Gemm', inputs: [before ? 'xs' : 'x', 'w1', 'b1'], outputs: ['h'], attributes: { transB: 1 }, name: 'fc1' },
            { op: 'Relu', inputs: ['h'], outputs: ['a'], name: 'relu1' },
            ...(before ? [] : [{ op: sin.op, inputs: ['a'], outputs: ['as'], name: 'wave' }]),
            { op: 'Gemm', inputs: [before ? 'a' : 'as', 'w2', 'b2'], outputs: ['logits'], attributes: { transB: 1 }, name: 'fc2' },
          ],
          initializers: graph.initializer,
        });
        return rebuilt;
      };
      expect(() => buildTrainingStep(withSin(true), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } })).not.toThrow();
      const build = () => buildTrainingStep(withSin(false), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } });
      expect(build).toThrow(UnsupportedOperationError);
      expect(build).toThrow(/no gradient rule for "wave" \(Sin\).*Ops with gradients: .*Gemm.*Relu/);
      // Freezing the first layer takes Sin off the trainable path.
      expect(() => buildTrainingStep(withSin(false), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, frozen: ['w1', 'b1'] })).not.toThrow();
    });

    it('should train the chosen parameters only and keep frozen ones as initializers', () => {
      const { model, signature } = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, frozen: ['w1'] });
      expect(signature.parameters.map((p) => p.name)).toEqual(['b1', 'w2', 'b2']);
      expect(signature.frozen).toEqual(['w1']);
      expect(model.graph.inputs.some((i) => i.name === 'w1')).toBe(false);
      expect(model.graph.getInitializer('w1')).toBeDefined();
      const chosen = buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, trainable: ['w2'] });
      expect(chosen.signature.parameters.map((p) => p.name)).toEqual(['w2']);
      expect(() => buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, trainable: ['x'] })).toThrow(/Cannot train x/);
      expect(() => buildTrainingStep(mlp(), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, frozen: ['nope'] })).toThrow(/Cannot freeze nope/);
    });

    it('should apply forward rewrites: decomposed ops, training buffers and the mode', async () => {
      const rules: GradientRuleTable = {
        // In train mode, Softplus becomes Log(Exp(x) + 1), whose ops have rules, and counts its calls in a buffer.
        Softplus: {
          rewriteForward: (c) => {
            if (c.mode !== 'train') return;
            c.removeNode();
            c.add('Log', [c.op('Add', [c.op('Exp', [c.input(0)]), c.scalar(1)])], {}, [c.output(0)]);
            c.updateBuffer('calls', c.op('Add', ['calls', c.scalar(1)]));
          },
          backward: () => {
            throw new UnsupportedOperationError('Softplus has no gradient of its own');
          },
        },
      };
      const model = buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', 3] }],
        outputs: ['logits'],
        nodes: [
          { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attributes: { transB: 1 } },
          { op: 'Softplus', inputs: ['h'], outputs: ['a'] },
          { op: 'Gemm', inputs: ['a', 'w2'], outputs: ['logits'], attributes: { transB: 1 } },
        ],
        initializers: [
          arrayToTensor('w1', randomArray(12, 1), [4, 3]),
          arrayToTensor('b1', randomArray(4, 2), [4]),
          arrayToTensor('w2', randomArray(8, 3), [2, 4]),
          arrayToTensor('calls', Float32Array.of(0), [1]),
        ],
      });
      const spec = { loss: [{ kind: 'crossEntropy' }] as LossTerm[], optimizer: { kind: 'sgd' } as const, rules, exposeGradients: true };
      expect(() => buildTrainingStep(model, { ...spec, mode: 'eval' })).toThrow(/Softplus has no gradient/);
      const { model: step, signature } = buildTrainingStep(model, { ...spec, mode: 'train' });
      expect(signature.mode).toBe('train');
      expect(signature.buffers).toEqual([{ name: 'calls', updated: 'updated.calls', dims: [1] }]);
      expect(step.graph.nodes.some((n) => n.opType === 'Softplus')).toBe(false);
      const batch = { x: new ort.Tensor('float32', randomArray(6, 4), [2, 3]), labels: new ort.Tensor('int64', BigInt64Array.of(1n, 0n), [2]) };
      const checks = await checkModelGradients(step, signature, model, batch);
      for (const check of checks) expect(check.relativeError, check.parameter).toBeLessThan(1e-3);
      const runner = await StepRunner.create(step, signature, model);
      try {
        await runner.step(batch, 0.1);
        await runner.step(batch, 0.1);
        expect(Array.from(runner.state.get('calls')?.data as Float32Array)).toEqual([2]);
      } finally {
        await runner.release();
      }
    });

    it('should find broadcast axes at run time when shapes are unknown', async () => {
      // x has no declared shape, so the shape of x + b is unknown when the step is built.
      const model = buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: [] }],
        outputs: ['logits'],
        nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['logits'] }],
        initializers: [arrayToTensor('b', Float32Array.of(0.5, -0.5, 0.25), [3])],
      });
      const graphInput = model.graph?.input[0];
      if (graphInput?.type?.value.case === 'tensorType') graphInput.type.value.value.shape = undefined;
      const { model: step, signature } = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, exposeGradients: true });
      const runner = await StepRunner.create(step, signature, model);
      try {
        const x = randomArray(6, 3);
        const labels = BigInt64Array.of(2n, 0n);
        const outputs = await runner.evaluate({ x: new ort.Tensor('float32', x, [2, 3]), labels: new ort.Tensor('int64', labels, [2]) });
        // dL/db = mean over the batch of softmax(x + b) - onehot(label)
        const expected = [0, 0, 0];
        for (let i = 0; i < 2; i++) {
          const row = [0, 1, 2].map((j) => (x[i * 3 + j] as number) + [0.5, -0.5, 0.25][j]!);
          const p = logSoftmax(row).map(Math.exp);
          p.forEach((v, j) => (expected[j]! += (v - (j === Number(labels[i]) ? 1 : 0)) / 2));
        }
        const gradient = Array.from(outputs[signature.parameters[0]?.gradient as string]?.data as Float32Array);
        gradient.forEach((g, j) => expect(g).toBeCloseTo(expected[j] as number, 6));
      } finally {
        await runner.release();
      }
    });

    it('should leave parameters that do not reach the loss out of the update, and say so', () => {
      const model = buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', 3] }],
        outputs: ['logits', 'aux'],
        nodes: [
          { op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['logits'], attributes: { transB: 1 } },
          { op: 'Gemm', inputs: ['x', 'w_aux'], outputs: ['aux'], attributes: { transB: 1 } },
        ],
        initializers: [arrayToTensor('w', randomArray(6, 1), [2, 3]), arrayToTensor('b', randomArray(2, 2), [2]), arrayToTensor('w_aux', randomArray(6, 3), [2, 3])],
      });
      const { model: step, signature } = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'adam' } });
      expect(signature.parameters.map((p) => p.name)).toEqual(['w', 'b']);
      expect(signature.unused).toEqual(['w_aux']);
      // The auxiliary branch is not computed by the step at all.
      expect(step.graph.nodes.filter((n) => n.opType === 'Gemm' && n.input.includes('w_aux'))).toEqual([]);
      expect(() => buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' }, trainable: ['w_aux'] })).toThrow(
        /does not depend on any trainable parameter/,
      );
    });

    it('should raise opset 11 to 16 models to 17 and refuse older ones', () => {
      for (const opset of [11, 13]) {
        const { model } = buildTrainingStep(mlp(opset), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } });
        expect(model.opsetVersion()).toBe(17);
      }
      expect(() => buildTrainingStep(mlp(9), { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } })).toThrow(/opset 9.*Convert the model/);
    });

    it('should untie parameters an exporter merged behind an Identity', async () => {
      const model = buildModel({
        inputs: [{ name: 'x', dataType: DataType.FLOAT, dims: ['batch', 3] }],
        outputs: ['logits'],
        nodes: [
          { op: 'Identity', inputs: ['b'], outputs: ['b_copy'] },
          { op: 'Gemm', inputs: ['x', 'w1', 'b'], outputs: ['h'], attributes: { transB: 1 } },
          { op: 'Gemm', inputs: ['h', 'w2', 'b_copy'], outputs: ['logits'], attributes: { transB: 1 } },
        ],
        initializers: [
          arrayToTensor('w1', randomArray(9, 1), [3, 3]),
          arrayToTensor('w2', randomArray(9, 2), [3, 3]),
          arrayToTensor('b', Float32Array.of(0.1, 0.2, 0.3), [3]),
        ],
      });
      const { model: step, signature } = buildTrainingStep(model, { loss: [{ kind: 'crossEntropy' }], optimizer: { kind: 'sgd' } });
      expect(signature.parameters.map((p) => p.name)).toEqual(['w1', 'b', 'w2', 'b_copy']);
      const runner = await StepRunner.create(step, signature, model);
      try {
        const x = new ort.Tensor('float32', randomArray(6, 3), [2, 3]);
        await runner.step({ x, labels: new ort.Tensor('int64', BigInt64Array.of(0n, 2n), [2]) }, 0.5);
        expect(Array.from(runner.state.get('b')?.data as Float32Array)).not.toEqual(Array.from(runner.state.get('b_copy')?.data as Float32Array));
        // Written back, the two copies become two initializers.
        const values = new Map([...runner.state].map(([name, tensor]) => [name, tensor.data as Float32Array]));
        const trained = writeTrainedParameters(model, signature, values);
        expect(trained.problems()).toEqual([]);
        expect(trained.graph.nodes.map((n) => n.opType)).toEqual(['Gemm', 'Gemm']);
        expect(tensorToArray(trained.graph.getInitializer('b_copy') as TensorProto)).toEqual(values.get('b_copy'));
        expect(tensorToArray(model.graph?.initializer.find((t) => t.name === 'b') as TensorProto)).toEqual(Float32Array.of(0.1, 0.2, 0.3));
      } finally {
        await runner.release();
      }
    });
  });
});
