import { DataType, makeAttribute, makeTensorValueInfo, type OnnxModel } from '@open-autoglm/onnx';
import { createSession, loadDataset } from '@open-autoglm/runtime';
import { describe, expect, it } from 'vitest';
import { measureInputMeans } from './compensateBias.js';
import { modelFeeds } from './recalibrateBatchNorm.js';
import { StructuredPruner } from './StructuredPruner.js';
import { fixturePath, loadFixture } from './test-support/pruningModels.js';

/** Mean over the calibration batches of every element of one tensor, exposed as an output. */
async function meanOf(model: OnnxModel, tensor: string, feeds: Iterable<Record<string, unknown>>): Promise<Float64Array> {
  const probe = model.clone();
  probe.graph.addOutput(makeTensorValueInfo(tensor, DataType.FLOAT));
  const session = await createSession(probe.toBytes(), { device: 'cpu', threads: 1 });
  let sum: Float64Array | undefined;
  let rows = 0;
  for (const batch of feeds) {
    const out = (await session.run(batch as never, [tensor]))[tensor];
    const data = out?.data as Float32Array;
    const width = data.length / (out?.dims[0] as number);
    sum ??= new Float64Array(width);
    for (let i = 0; i < data.length; i++) sum[i % width] = (sum[i % width] as number) + (data[i] as number);
    rows += out?.dims[0] as number;
  }
  return (sum as Float64Array).map((v) => v / rows);
}

describe('bias compensation', () => {
  it("should keep the mean output of the layer reading removed neurons exactly (fc2 of LeNet-5 after pruning fc1's neurons)", async () => {
    const model = await loadFixture('lenet5-fmnist');
    const calib = (await loadDataset({ x: fixturePath('fmnist-calib.x.npy') })).slice(0, 256);
    const inputs = ['input'];
    const pruner = new StructuredPruner(model);
    const options = { perLayer: { '/fc1/Gemm': 0.5 } };
    const targets = pruner.biasCompensationTargets(options);
    expect(targets.map((t) => [t.node, t.bias, t.removed.length])).toEqual([['/fc2/Gemm', 'fc2.bias', 60]]);
    const means = await measureInputMeans(model, targets, modelFeeds(calib, inputs, 64));
    const { model: compensated, report } = pruner.prune({ ...options, inputMeans: means });
    const { model: plain } = pruner.prune(options);
    expect(report.compensatedBiases).toBe(1);
    const original = await meanOf(model, '/fc2/Gemm_output_0', modelFeeds(calib, inputs, 64));
    const after = await meanOf(compensated, '/fc2/Gemm_output_0', modelFeeds(calib, inputs, 64));
    const uncorrected = await meanOf(plain, '/fc2/Gemm_output_0', modelFeeds(calib, inputs, 64));
    const worst = (a: Float64Array, b: Float64Array): number => Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))));
    expect(worst(original, after)).toBeLessThan(1e-4);
    expect(worst(original, uncorrected)).toBeGreaterThan(0.05);
  });

  it('should weight each batch by its samples: 100 samples in batches of 64 + 36 give the mean over the 100 rows', async () => {
    const model = await loadFixture('lenet5-fmnist');
    const calib = (await loadDataset({ x: fixturePath('fmnist-calib.x.npy') })).slice(0, 100);
    const targets = new StructuredPruner(model).biasCompensationTargets({ perLayer: { '/fc1/Gemm': 0.5 } });
    const target = targets[0];
    if (target === undefined) throw new Error('no bias compensation target');
    const means = await measureInputMeans(model, targets, modelFeeds(calib, ['input'], 64));
    // Float64 reference: every row of the input of fc2 summed, whatever the batching.
    const reference = await meanOf(model, target.input, modelFeeds(calib, ['input'], 64));
    const measured = means.get(`${target.input}@${target.inputAxis}`) as Float64Array;
    expect(measured.length).toBe(reference.length);
    const scale = Math.max(...reference.map(Math.abs));
    expect(Math.max(...measured.map((v, i) => Math.abs(v - (reference[i] as number))))).toBeLessThan(1e-5 * scale);
  });

  it('should leave out a Gemm whose bias is scaled by beta (the fold assumes Y = A B + C)', async () => {
    const model = await loadFixture('lenet5-fmnist');
    const fc2 = model.graph.nodes.find((n) => n.name === '/fc2/Gemm');
    if (fc2 === undefined) throw new Error('no /fc2/Gemm');
    fc2.attribute = [...fc2.attribute.filter((a) => a.name !== 'beta'), makeAttribute('beta', 0.5)];
    expect(new StructuredPruner(model).biasCompensationTargets({ perLayer: { '/fc1/Gemm': 0.5 } })).toEqual([]);
  });
});
