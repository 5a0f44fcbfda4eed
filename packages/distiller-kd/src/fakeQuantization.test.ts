import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DataType, OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { createSession, loadDataset } from '@open-autoglm/runtime';
import { refreezeQuantizedWeights, unfreezeQuantizedWeights } from './fakeQuantization.js';
import { addFakeQuantization } from './test-support/addFakeQuantization.js';

const fixtures = fileURLToPath(new URL('../../../fixtures/', import.meta.url));

async function logits(model: OnnxModel, x: Float32Array): Promise<Float32Array> {
  const { Tensor } = await import('onnxruntime-node');
  const session = await createSession(model.toBytes(), { device: 'cpu', threads: 1 });
  try {
    const outputs = await session.run({ input: new Tensor('float32', x, [x.length / 784, 1, 28, 28]) });
    return outputs['logits']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('unfreezeQuantizedWeights', () => {
  it('should make a real QDQ model trainable without changing its outputs, and refreeze it to the same integers', async () => {
    const calibration = await loadDataset({ x: path.join(fixtures, 'fmnist-calib.x.npy') });
    const qdq = await addFakeQuantization(await OnnxModel.load(path.join(fixtures, 'lenet5-fmnist.onnx')), calibration.slice(0, 200), { realWeights: true });
    const integers = qdq.graph.initializers.filter((t) => t.dataType === DataType.INT8 || t.dataType === DataType.INT32);
    expect(integers.filter((t) => t.dataType === DataType.INT8)).toHaveLength(5);
    expect(integers.filter((t) => t.dataType === DataType.INT32).length).toBeGreaterThanOrEqual(3);

    const unfrozen = qdq.clone();
    const record = unfreezeQuantizedWeights(unfrozen);
    expect(record.weights).toHaveLength(5);
    expect(record.biases).toHaveLength(integers.length - 5);
    expect(unfrozen.graph.initializers.filter((t) => t.dataType === DataType.INT8 && t.dims.length > 0)).toEqual([]);
    expect(unfrozen.problems()).toEqual([]);
    const x = (calibration.feature('x').data as Float32Array).slice(0, 16 * 784);
    const [before, after] = [await logits(qdq, x), await logits(unfrozen, x)];
    for (let i = 0; i < before.length; i++) expect(Math.abs((after[i] as number) - (before[i] as number))).toBeLessThan(1e-4);

    refreezeQuantizedWeights(unfrozen, record);
    expect(unfrozen.problems()).toEqual([]);
    for (const tensor of integers) expect(tensorToArray(unfrozen.graph.getInitializer(tensor.name)!)).toEqual(tensorToArray(tensor));
    const ops = (m: OnnxModel): string[] => m.graph.nodes.map((n) => n.opType).sort();
    expect(ops(unfrozen)).toEqual(ops(qdq));
    expect(unfrozen.graph.initializers.filter((t) => t.name.endsWith('.float'))).toEqual([]);
  });
});
