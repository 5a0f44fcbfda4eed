import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrayToTensor, OnnxModel, tensorToArray } from '@open-autoglm/onnx';
import { writeNpy } from '@open-autoglm/runtime';
import { fixturesDir as fixtures, runAutoglmBinary as autoglm, snapshotFolder as snapshot } from '../../../tools/test-support/autoglmBinary.js';

const teacher = path.join(fixtures, 'lenet5-fmnist.onnx');
const calibX = path.join(fixtures, 'fmnist-calib.x.npy');
const calibY = path.join(fixtures, 'fmnist-calib.y.npy');
const valX = path.join(fixtures, 'fmnist-val-2k.x.npy');
const valY = path.join(fixtures, 'fmnist-val-2k.y.npy');

describe('autoglm distill', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'autoglm-distill-cli-'));
    // A damaged student (half of conv2's filters zeroed) and a teacher that predicts 5 classes instead of 10.
    const student = await OnnxModel.load(teacher);
    const weight = Float32Array.from(tensorToArray(student.graph.getInitializer('conv2.weight')!) as Float32Array);
    weight.fill(0, 0, weight.length / 2);
    student.graph.setInitializer(arrayToTensor('conv2.weight', weight, [16, 6, 5, 5]));
    await student.save(path.join(dir, 'student.onnx'));
    const fiveClasses = await OnnxModel.load(teacher);
    const fc3 = tensorToArray(fiveClasses.graph.getInitializer('fc3.weight')!) as Float32Array;
    fiveClasses.graph.setInitializer(arrayToTensor('fc3.weight', fc3.slice(0, 5 * 84), [5, 84]));
    fiveClasses.graph.setInitializer(arrayToTensor('fc3.bias', new Float32Array(5), [5]));
    const type = fiveClasses.graph.outputs[0]!.type!.value;
    if (type.case === 'tensorType') type.value.shape!.dim[1]!.value = { case: 'dimValue', value: 5n };
    await fiveClasses.save(path.join(dir, 'five-classes.onnx'));
    await writeNpy(path.join(dir, 'flat.x.npy'), { dtype: 'float32', shape: [8, 784], data: new Float32Array(8 * 784) });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should distill without labels and print the result as JSON', async () => {
    const { code, stdout, stderr } = await autoglm(
      dir,
      'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX,
      '--val', valX, '--val-labels', valY, '--epochs', '1', '--batch', '50', '--lr', '0.002', '--out', 'distilled.onnx', '--json',
    );
    expect(stderr).toMatch(/epoch 1\/1: loss [\d.]+, validation accuracy [\d.]+%/);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ output: path.join(dir, 'distilled.onnx'), steps: 20, stop: 'completed', alpha: 1, temperature: 4, labelled: false, bestEpoch: 0 });
    expect(report.validationAccuracy).toBeGreaterThan(0.7);
    expect((await OnnxModel.load(path.join(dir, 'distilled.onnx'))).problems()).toEqual([]);
  });

  it('should print a readable summary with labels and a step budget', async () => {
    const { code, stdout } = await autoglm(
      dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX, '--labels', calibY,
      '--steps', '4', '--alpha', '0.5', '--temperature', '2', '--out', 'budget.onnx',
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^distilled student\.onnx from .*lenet5-fmnist\.onnx: 4 updates \(step-budget\), alpha 0\.5, T 2\nwrote .*budget\.onnx\n$/);
  });

  it('should distill on augmented batches with --translate, --flip and --padding, and refuse an unknown padding', async () => {
    const { code, stdout } = await autoglm(
      dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX, '--labels', calibY,
      '--steps', '2', '--translate', '2', '--flip', '--padding', 'edge', '--out', 'augmented.onnx', '--json',
    );
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ steps: 2, augmentation: { translate: 2, flip: true, padding: 'edge' } });
    const before = await snapshot(dir);
    const badPadding = await autoglm(dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX, '--translate', '1', '--padding', 'mirror', '--out', 'x.onnx');
    expect(badPadding.code).toBe(1);
    expect(badPadding.stderr.trim()).toMatch(/^.*--padding takes zero or edge, got "mirror"\.$/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('should fail with one message and write nothing for a teacher of other outputs or data of another shape', async () => {
    const before = await snapshot(dir);
    const wrongTeacher = await autoglm(dir, 'distill', '--teacher', 'five-classes.onnx', '--student', 'student.onnx', '--data', calibX, '--out', 'x.onnx');
    expect(wrongTeacher.code).toBe(1);
    expect(wrongTeacher.stderr).toMatch(/teacher .*five-classes\.onnx and the student .*student\.onnx do not fit together: .*\[batch, 5\] but .*\[batch, 10\]/);
    expect(wrongTeacher.stderr.trim().split('\n')).toHaveLength(1);
    const wrongData = await autoglm(dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', 'flat.x.npy', '--out', 'x.onnx');
    expect(wrongData.code).toBe(1);
    expect(wrongData.stderr).toMatch(/flat\.x\.npy\) has samples of shape \[784\] but model input "input" takes \[batch, 1, 28, 28\]/);
    const halfValidation = await autoglm(dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX, '--val', valX, '--out', 'x.onnx');
    expect(halfValidation.code).toBe(1);
    expect(halfValidation.stderr).toMatch(/Give both --val and --val-labels/);
    const overwrite = await autoglm(dir, 'distill', '--teacher', teacher, '--student', 'student.onnx', '--data', calibX, '--out', 'student.onnx');
    expect(overwrite.code).toBe(1);
    expect(overwrite.stderr).toMatch(/Refusing to write .*student\.onnx: it is an input/);
    expect(await snapshot(dir)).toEqual(before);
  });
});
