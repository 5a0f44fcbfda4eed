import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '@open-autoglm/core';
import { OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { exportTrainedModel } from './exportTrainedModel.js';

const lenet = fileURLToPath(new URL('../../../../fixtures/lenet5-fmnist.onnx', import.meta.url));

describe('exportTrainedModel', () => {
  it('should write trained values into a copy and leave the original untouched', async () => {
    const model = await OnnxModel.load(lenet);
    const before = tensorToArray(model.graph.getInitializer('bn1.running_mean')!).slice();
    const trained = new Float32Array(6).fill(0.5);
    const copy = exportTrainedModel(model, new Map([['bn1.running_mean', { data: trained, dims: [6] }]]));
    trained.fill(9); // later changes to the array must not reach the exported model
    expect(tensorToArray(copy.graph.getInitializer('bn1.running_mean')!)).toEqual(new Float32Array(6).fill(0.5));
    expect(tensorToArray(model.graph.getInitializer('bn1.running_mean')!)).toEqual(before);
    expect(copy.graph.nodes.map((n) => n.opType)).toEqual(model.graph.nodes.map((n) => n.opType));
    expect(copy.problems()).toEqual([]);
  });

  it('should refuse values for tensors the model does not have or of another shape', async () => {
    const model = await OnnxModel.load(lenet);
    expect(() => exportTrainedModel(model, new Map([['nope', { data: new Float32Array(1), dims: [1] }]]))).toThrow(ModelFormatError);
    expect(() => exportTrainedModel(model, new Map([['fc3.bias', { data: new Float32Array(4), dims: [4] }]]))).toThrow(
      /"fc3.bias".*\[10\].*\[4\]/,
    );
  });
});
