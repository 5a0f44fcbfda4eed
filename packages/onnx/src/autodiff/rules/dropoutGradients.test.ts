import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { arrayToTensor } from '../../tensor.js';
import { buildModel, randomArray } from '../../test-support/testModels.js';
import { buildTrainingStep } from '../buildTrainingStep.js';
import { checkGradients } from '../test-support/checkGradients.js';
import { StepRunner } from '../test-support/StepRunner.js';

describe('dropoutGradients', () => {
  it('should pass the gradient through unchanged in eval mode', async () => {
    const result = await checkGradients({
      nodes: [{ op: 'Dropout', inputs: ['x', 'ratio'], outputs: ['y'] }],
      inputs: [
        { name: 'x', dims: [4, 5] },
        { name: 'ratio', dims: [], data: Float32Array.of(0.3), differentiable: false },
      ],
      outputs: ['y'],
      mode: 'eval',
    });
    expect(result.maxRelativeError).toBeLessThan(1e-3);
  });

  it('should scale the gradient of kept elements by 1 / (1 - ratio) and zero dropped ones in train mode', async () => {
    const count = 2000;
    const ratio = 0.25;
    const x = Float32Array.from(randomArray(count, 3), (v) => v + 2); // never 0, so a zero gradient means dropped
    const model = buildModel({
      inputs: [],
      outputs: ['y'],
      nodes: [{ op: 'Dropout', inputs: ['x', 'ratio'], outputs: ['y'] }],
      initializers: [arrayToTensor('x', x, [count]), arrayToTensor('ratio', Float32Array.of(ratio), [])],
    });
    const { model: step, signature } = buildTrainingStep(model, {
      trainable: ['x'],
      mode: 'train',
      loss: [{ kind: 'mse', pairs: [{ student: 'y' }] }],
      optimizer: { kind: 'sgd' },
      exposeGradients: true,
    });
    const runner = await StepRunner.create(step, signature, model);
    const teacher = signature.teacherFeatures[0]?.name ?? '';
    const outputs = await runner.step({ [teacher]: new ort.Tensor('float32', new Float32Array(count), [count]) }, 0);
    await runner.release();
    // loss = mean(y^2), y = x * mask / (1 - ratio): dL/dx = 2 x mask / (1 - ratio)^2 / count.
    const gradient = outputs[signature.parameters[0]?.gradient ?? '']?.data as Float32Array;
    let dropped = 0;
    gradient.forEach((g, i) => {
      if (g === 0) {
        dropped++;
        return;
      }
      expect(g).toBeCloseTo((2 * (x[i] as number)) / (1 - ratio) ** 2 / count, 8);
    });
    expect(dropped / count).toBeGreaterThan(0.2);
    expect(dropped / count).toBeLessThan(0.3);
  });
});
