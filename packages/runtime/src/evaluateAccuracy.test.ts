import { readFile } from 'node:fs/promises';
import { DatasetError, UnsupportedOperationError } from '@open-autoglm/core';
import { DataType, makeNode, makeTensorValueInfo } from '@open-autoglm/onnx';
import { afterAll, describe, expect, it } from 'vitest';
import { type Dataset, loadDataset } from './dataset.js';
import { evaluateAccuracy } from './evaluateAccuracy.js';
import { inferBatches } from './inferBatches.js';
import { readNpy } from './npy.js';
import { createSession, type RuntimeSession } from './session.js';
import { tinyModel } from './test-support/tinyModel.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;
const CPU = { device: 'cpu', threads: 1 } as const;

interface ManifestModel {
  file: string;
  splits: { eval: string };
  accuracy: { onnxruntime_eval: number; eval_split_n: number };
  reference_logits: { file: string };
}
const manifest = JSON.parse(await readFile(fixture('manifest.json'), 'utf8')) as { models: Record<string, ManifestModel> };

const datasets = new Map<string, Promise<Dataset>>();
function split(name: string): Promise<Dataset> {
  let dataset = datasets.get(name);
  if (dataset === undefined) {
    dataset = loadDataset({ x: fixture(`${name}.x.npy`), y: fixture(`${name}.y.npy`) });
    datasets.set(name, dataset);
  }
  return dataset;
}

/** Identity over [batch, 3] scores: the "logits" are the data itself, so accuracy is hand-computable. */
const identityScores = (): Uint8Array =>
  tinyModel(
    [makeNode('Identity', ['scores'], ['out'])],
    [makeTensorValueInfo('scores', DataType.FLOAT, ['batch', 3])],
    [makeTensorValueInfo('out', DataType.FLOAT, ['batch', 3])],
  );

describe('evaluateAccuracy', () => {
  const sessions: RuntimeSession[] = [];
  afterAll(async () => {
    for (const session of sessions) await session.release();
  });

  for (const [name, model] of Object.entries(manifest.models)) {
    it(`should reproduce the manifest accuracy and PyTorch logits of ${name} on ${model.splits.eval}`, async () => {
      const session = await createSession(fixture(model.file), { device: 'cpu', threads: 2 });
      sessions.push(session);
      const dataset = await split(model.splits.eval);
      const result = await evaluateAccuracy(session, dataset, { batch: 250 });
      expect(result.samples).toBe(model.accuracy.eval_split_n);
      expect(result.accuracy).toBe(result.correct / result.samples);
      // Within 0.1 point of onnxruntime_eval.
      expect(Math.abs(result.accuracy - model.accuracy.onnxruntime_eval)).toBeLessThanOrEqual(0.001);

      const reference = await readNpy(fixture(model.reference_logits.file));
      const first64 = inferBatches(session, dataset.slice(0, 64), { batch: 64 });
      const batch = (await first64.next()).value;
      const logits = batch?.outputs[session.outputNames[0] as string];
      expect(logits?.dims).toEqual(reference.shape);
      const expected = reference.data as Float32Array;
      const actual = logits?.data as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs((actual[i] as number) - (expected[i] as number)));
      expect(maxDiff).toBeLessThan(1e-4);
    });
  }

  it('should count arg-max hits by hand-computable scores, ties going to the first class', async () => {
    const session = await createSession(identityScores(), CPU);
    sessions.push(session);
    const scores = new Float32Array([0.1, 0.7, 0.2, 5, 5, -1, -3, -2, -1, 0, 0, 0, 2, 1, 0]);
    const dataset = await loadDataset({
      x: { dtype: 'float32', shape: [5, 3], data: scores, file: undefined },
      y: { dtype: 'int32', shape: [5], data: new Int32Array([1, 0, 2, 1, 0]), file: undefined },
    });
    // arg-max per row: 1, 0 (tie), 2, 0 (all equal), 0 -> hits on rows 0, 1, 2, 4.
    expect(await evaluateAccuracy(session, dataset, { batch: 2 })).toEqual({ accuracy: 0.8, samples: 5, correct: 4 });
  });

  it('should need labels, integer labels, one label per sample, and labels within the classes', async () => {
    const session = await createSession(identityScores(), CPU);
    sessions.push(session);
    const x = { dtype: 'float32' as const, shape: [2, 3], data: new Float32Array(6), file: undefined };
    await expect(evaluateAccuracy(session, await loadDataset({ x }))).rejects.toThrow(/no labels.*compareOutputs/);
    const labelled = await loadDataset({ x, y: { dtype: 'int64', shape: [2], data: new BigInt64Array(2), file: undefined } });
    await expect(evaluateAccuracy(session, labelled.slice(0, 0))).rejects.toThrow(/Cannot measure accuracy: the dataset has no samples/);
    const floatLabels = await loadDataset({ x, y: { dtype: 'float32', shape: [2], data: new Float32Array(2), file: 'y.npy' } });
    await expect(evaluateAccuracy(session, floatLabels)).rejects.toThrow(/labels y\.npy holds float32 values.*astype\(numpy\.int64\)/);
    const oneHot = await loadDataset({ x, y: { dtype: 'uint8', shape: [2, 3], data: new Uint8Array(6), file: 'onehot.npy' } });
    await expect(evaluateAccuracy(session, oneHot)).rejects.toThrow(/shape \[2, 3\].*argmax\(axis=1\)/);
    const outOfRange = await loadDataset({ x, y: { dtype: 'int64', shape: [2], data: new BigInt64Array([0n, 3n]), file: 'y.npy' } });
    const error = await evaluateAccuracy(session, outOfRange).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(/Label 3 of sample 1 in labels y\.npy is not a class of model .* scores 3 classes \(0\.\.2\)/);
  });

  it('should refuse an output that is not one row of scores per sample', async () => {
    const flat = tinyModel(
      [makeNode('ReduceSum', ['scores'], ['total'], { keepdims: 0 })],
      [makeTensorValueInfo('scores', DataType.FLOAT, ['batch', 3])],
      [makeTensorValueInfo('total', DataType.FLOAT, [])],
    );
    const session = await createSession(flat, CPU);
    sessions.push(session);
    const dataset = await loadDataset({
      x: { dtype: 'float32', shape: [4, 3], data: new Float32Array(12), file: undefined },
      y: { dtype: 'int64', shape: [4], data: new BigInt64Array(4), file: undefined },
    });
    await expect(evaluateAccuracy(session, dataset)).rejects.toThrow(UnsupportedOperationError);
    await expect(evaluateAccuracy(session, dataset)).rejects.toThrow(/has shape \[\] for a batch of 4; its first axis must be the batch/);
    await expect(evaluateAccuracy(session, dataset, { output: 'logits' })).rejects.toThrow(/has no output "logits"; its outputs are: total/);
  });
});
