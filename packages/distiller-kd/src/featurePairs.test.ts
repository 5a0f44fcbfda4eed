import { describe, expect, it } from 'vitest';
import { ConfigError, SeededRandom } from '@open-autoglm/core';
import {
  arrayToTensor,
  buildTrainingStep,
  DataType,
  initialTrainingState,
  makeModel,
  makeNode,
  makeTensorValueInfo,
  OnnxModel,
  tensorToArray,
} from '@open-autoglm/onnx';
import { createSession } from '@open-autoglm/runtime';
import { Tensor } from 'onnxruntime-node';
import { marginOfChannel, removeProjections, setUpFeaturePairs } from './featurePairs.js';

const IN = 3;
const SIDE = 4;
const CLASSES = 5;

/** x [N, 3, 4, 4] -> 1x1 Conv to `width` channels ("features") -> GlobalAveragePool -> Flatten -> Gemm -> logits. */
function convNet(width: number, seed: number): OnnxModel {
  const random = new SeededRandom(seed);
  const values = (n: number): Float32Array => Float32Array.from({ length: n }, () => random.nextNormal() * 0.5);
  return new OnnxModel(
    makeModel({
      name: 'net',
      node: [
        makeNode('Conv', ['x', 'conv.weight'], ['features'], { kernel_shape: [1, 1] }, 'conv'),
        makeNode('GlobalAveragePool', ['features'], ['pooled'], {}, 'pool'),
        makeNode('Flatten', ['pooled'], ['flat'], {}, 'flatten'),
        makeNode('Gemm', ['flat', 'fc.weight', 'fc.bias'], ['logits'], { transB: 1 }, 'fc'),
      ],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', IN, SIDE, SIDE])],
      output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', CLASSES])],
      initializer: [
        arrayToTensor('conv.weight', values(width * IN), [width, IN, 1, 1]),
        arrayToTensor('fc.weight', values(CLASSES * width), [CLASSES, width]),
        arrayToTensor('fc.bias', values(CLASSES), [CLASSES]),
      ],
    }),
  );
}

/** mean((P (W x) - t)^2) over every element, in float64, for 1x1 convolutions W [mid, IN] and P [out, mid]. */
function projectedMse(x: Float32Array, w: Float64Array, p: Float64Array, t: Float32Array, batch: number, mid: number, out: number): number {
  const pixels = SIDE * SIDE;
  let sum = 0;
  for (let n = 0; n < batch; n++) {
    for (let q = 0; q < pixels; q++) {
      const hidden = Array.from({ length: mid }, (_, m) => {
        let s = 0;
        for (let c = 0; c < IN; c++) s += (w[m * IN + c] as number) * (x[(n * IN + c) * pixels + q] as number);
        return s;
      });
      for (let o = 0; o < out; o++) {
        let s = 0;
        for (let m = 0; m < mid; m++) s += (p[o * mid + m] as number) * (hidden[m] as number);
        sum += (s - (t[(n * out + o) * pixels + q] as number)) ** 2;
      }
    }
  }
  return sum / (batch * out * pixels);
}

describe('setUpFeaturePairs', () => {
  it('should add a 1x1 projection for a narrower student whose gradient matches float64 finite differences', async () => {
    const student = convNet(2, 1);
    const teacher = convNet(4, 2);
    const { student: projected, pairs } = setUpFeaturePairs(student, teacher, [{ student: 'features' }], 7);
    expect(pairs).toHaveLength(1);
    const pair = pairs[0]!;
    expect(pair.projection).toMatchObject({ from: 2, to: 4 });
    expect(student.graph.nodes).toHaveLength(4); // the input model is left alone

    const { model: step, signature } = buildTrainingStep(projected, {
      loss: [{ kind: 'mse', pairs: [{ student: pair.distilled }] }],
      optimizer: { kind: 'sgd' },
      exposeGradients: true,
    });
    const trained = signature.parameters.map((p) => p.name);
    expect(trained).toEqual(expect.arrayContaining(['conv.weight', pair.projection!.weight]));

    const batch = 3;
    const random = new SeededRandom(5);
    const x = Float32Array.from({ length: batch * IN * SIDE * SIDE }, () => random.nextNormal());
    const t = Float32Array.from({ length: batch * 4 * SIDE * SIDE }, () => random.nextNormal());
    const feeds: Record<string, Tensor> = {
      x: new Tensor('float32', x, [batch, IN, SIDE, SIDE]),
      [signature.teacherFeatures[0]!.name]: new Tensor('float32', t, [batch, 4, SIDE, SIDE]),
      [signature.step]: new Tensor('int64', BigInt64Array.of(1n), []),
      [signature.learningRate]: new Tensor('float32', Float32Array.of(0), []),
    };
    for (const [name, value] of initialTrainingState(projected, signature)) feeds[name] = new Tensor('float32', value.data, value.dims);
    const session = await createSession(step.toBytes(), { device: 'cpu', threads: 1 });
    const outputs = await session.run(feeds);
    await session.release();

    const w = Float64Array.from(tensorToArray(projected.graph.getInitializer('conv.weight')!) as Float32Array);
    const p = Float64Array.from(tensorToArray(projected.graph.getInitializer(pair.projection!.weight)!) as Float32Array);
    const loss = (ww: Float64Array, pp: Float64Array): number => projectedMse(x, ww, pp, t, batch, 2, 4);
    expect(Math.abs(Number(outputs[signature.loss]!.data[0]) - loss(w, p))).toBeLessThan(1e-5);
    const h = 1e-6;
    for (const [name, values] of [
      ['conv.weight', w],
      [pair.projection!.weight, p],
    ] as const) {
      const gradient = outputs[signature.parameters.find((q) => q.name === name)!.gradient!]!.data as Float32Array;
      for (let k = 0; k < values.length; k++) {
        const plus = Float64Array.from(values);
        const minus = Float64Array.from(values);
        plus[k]! += h;
        minus[k]! -= h;
        const numeric = name === 'conv.weight' ? (loss(plus, p) - loss(minus, p)) / (2 * h) : (loss(w, plus) - loss(w, minus)) / (2 * h);
        expect(Math.abs((gradient[k] as number) - numeric)).toBeLessThan(1e-4 + 1e-3 * Math.abs(numeric));
      }
    }

    const exported = projected.clone();
    removeProjections(exported, pairs);
    expect(exported.graph.nodes.map((n) => n.name)).toEqual(['conv', 'pool', 'flatten', 'fc']);
    expect(exported.graph.getInitializer(pair.projection!.weight)).toBeUndefined();
  });

  it('should pair by name without a projection when widths agree, and refuse tensors of other resolutions', () => {
    const { pairs } = setUpFeaturePairs(convNet(4, 1), convNet(4, 2), 'auto', 0);
    expect(pairs).toEqual([{ student: 'features', teacher: 'features', distilled: 'features' }]);
    expect(setUpFeaturePairs(convNet(4, 1), convNet(4, 2), 'stages', 0).pairs).toEqual(pairs); // one resolution: one stage
    expect(() => setUpFeaturePairs(convNet(2, 1), convNet(4, 2), [{ student: 'features', teacher: 'pooled' }], 0)).toThrow(
      /shapes may differ only in the channel axis/,
    );
    expect(() => setUpFeaturePairs(convNet(2, 1), convNet(4, 2), [{ student: 'nothing' }], 0)).toThrow(ConfigError);
  });
});

/** x [N, 3, 4, 4] -> 1x1 Conv -> BatchNormalization -> Relu ("act") -> GlobalAveragePool -> Flatten -> Gemm, keeping only `channels` of 4. */
function convBatchNormNet(channels: readonly number[]): OnnxModel {
  const random = new SeededRandom(3);
  const full = (n: number, offset = 0): Float32Array => Float32Array.from({ length: n }, () => offset + random.nextNormal() * 0.5);
  const conv = full(4 * IN);
  const [scale, shift, mean] = [full(4, 1), full(4), full(4)];
  const variance = Float32Array.from({ length: 4 }, () => 0.5 + random.nextFloat());
  const fc = full(CLASSES * 4);
  const rows = (values: Float32Array, size: number): Float32Array => Float32Array.from(channels.flatMap((c) => [...values.subarray(c * size, (c + 1) * size)]));
  const fcKept = Float32Array.from({ length: CLASSES * channels.length }, (_, k) => fc[Math.floor(k / channels.length) * 4 + (channels[k % channels.length] as number)] as number);
  const width = channels.length;
  return new OnnxModel(
    makeModel({
      name: 'net',
      node: [
        makeNode('Conv', ['x', 'conv.weight'], ['conv'], { kernel_shape: [1, 1] }, 'conv'),
        makeNode('BatchNormalization', ['conv', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], ['bn'], {}, 'bn'),
        makeNode('Relu', ['bn'], ['act'], {}, 'relu'),
        makeNode('GlobalAveragePool', ['act'], ['pooled'], {}, 'pool'),
        makeNode('Flatten', ['pooled'], ['flat'], {}, 'flatten'),
        makeNode('Gemm', ['flat', 'fc.weight', 'fc.bias'], ['logits'], { transB: 1 }, 'fc'),
      ],
      input: [makeTensorValueInfo('x', DataType.FLOAT, ['batch', IN, SIDE, SIDE])],
      output: [makeTensorValueInfo('logits', DataType.FLOAT, ['batch', CLASSES])],
      initializer: [
        arrayToTensor('conv.weight', rows(conv, IN), [width, IN, 1, 1]),
        arrayToTensor('bn.scale', rows(scale, 1), [width]),
        arrayToTensor('bn.bias', rows(shift, 1), [width]),
        arrayToTensor('bn.mean', rows(mean, 1), [width]),
        arrayToTensor('bn.var', rows(variance, 1), [width]),
        arrayToTensor('fc.weight', fcKept, [CLASSES, width]),
        arrayToTensor('fc.bias', full(CLASSES), [CLASSES]),
      ],
    }),
  );
}

async function runTensor(model: OnnxModel, tensor: string, x: Float32Array, batch: number): Promise<Float32Array> {
  const exposed = model.clone();
  exposed.graph.addOutput(makeTensorValueInfo(tensor, DataType.FLOAT, []));
  const session = await createSession(exposed.toBytes(), { device: 'cpu', threads: 1 });
  try {
    return (await session.run({ x: new Tensor('float32', x, [batch, IN, SIDE, SIDE]) }))[tensor]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('setUpFeaturePairs with pruned matching', () => {
  it("should pair a pruned student's ReLU output with the teacher's kept channels, which a sliced student reproduces exactly", async () => {
    const teacher = convBatchNormNet([0, 1, 2, 3]);
    const student = convBatchNormNet([1, 3]);
    const setup = setUpFeaturePairs(student, teacher, 'pruned', 0);
    expect(setup.pairs).toEqual([{ student: 'act', teacher: 'distill.kept.act', distilled: 'act', keptChannels: [1, 3] }]);
    expect(setup.student.graph.nodes).toHaveLength(student.graph.nodes.length); // no projection added
    expect(teacher.graph.producerOf('distill.kept.act')).toBeUndefined(); // the teacher given is left alone

    const batch = 2;
    const random = new SeededRandom(9);
    const x = Float32Array.from({ length: batch * IN * SIDE * SIDE }, () => random.nextNormal());
    const gathered = await runTensor(setup.teacher, 'distill.kept.act', x, batch);
    const full = await runTensor(teacher, 'act', x, batch);
    const own = await runTensor(student, 'act', x, batch);
    const pixels = SIDE * SIDE;
    const expected = Float32Array.from({ length: batch * 2 * pixels }, (_, k) => {
      const [n, c, q] = [Math.floor(k / (2 * pixels)), Math.floor(k / pixels) % 2, k % pixels];
      return full[(n * 4 + [1, 3][c]!) * pixels + q] as number;
    });
    expect(Array.from(gathered)).toEqual(Array.from(expected));
    expect(Array.from(own)).toEqual(Array.from(expected));
  });

  it('should pair an unpruned student directly, and refuse a student whose channels match no teacher BatchNorm', () => {
    const teacher = convBatchNormNet([0, 1, 2, 3]);
    expect(setUpFeaturePairs(convBatchNormNet([0, 1, 2, 3]), teacher, 'pruned', 0).pairs).toEqual([{ student: 'act', teacher: 'act', distilled: 'act' }]);
    const retrained = convBatchNormNet([1, 3]);
    retrained.graph.setInitializer(arrayToTensor('bn.scale', Float32Array.of(7, 8), [2]));
    expect(() => setUpFeaturePairs(retrained, teacher, 'pruned', 0)).toThrow(/features: pruned found no ReLU output/);
  });
});

describe('setUpFeaturePairs with pruned-preactivation matching', () => {
  it("should pair the pre-ReLU tensor through the teacher's margin ReLU on both sides, removed again on export", async () => {
    const teacher = convBatchNormNet([0, 1, 2, 3]);
    const student = convBatchNormNet([1, 3]);
    const setup = setUpFeaturePairs(student, teacher, 'pruned-preactivation', 0);
    expect(setup.pairs).toHaveLength(1);
    const pair = setup.pairs[0]!;
    expect(pair).toMatchObject({ student: 'bn', keptChannels: [1, 3], margin: { channels: 2 } });

    const batch = 2;
    const random = new SeededRandom(4);
    const x = Float32Array.from({ length: batch * IN * SIDE * SIDE }, () => random.nextNormal());
    const pixels = SIDE * SIDE;
    const preactivation = await runTensor(teacher, 'bn', x, batch);
    const scale = tensorToArray(teacher.graph.getInitializer('bn.scale')!) as Float32Array;
    const shift = tensorToArray(teacher.graph.getInitializer('bn.bias')!) as Float32Array;
    const margins = [1, 3].map((c) => marginOfChannel(scale[c] as number, shift[c] as number));
    // max(t, m) - m on the kept channels, by hand.
    const expected = Array.from({ length: batch * 2 * pixels }, (_, k) => {
      const [n, c, q] = [Math.floor(k / (2 * pixels)), Math.floor(k / pixels) % 2, k % pixels];
      return Math.max(preactivation[(n * 4 + [1, 3][c]!) * pixels + q] as number, margins[c]!) - margins[c]!;
    });
    const close = (actual: Float32Array): void => actual.forEach((v, k) => expect(Math.abs(v - expected[k]!)).toBeLessThan(1e-5));
    close(await runTensor(setup.teacher, pair.teacher, x, batch));
    close(await runTensor(setup.student, pair.distilled, x, batch)); // the sliced student reproduces it exactly
    expect(expected.some((v) => v === 0) && expected.some((v) => v > 0)).toBe(true); // the margin clips some values, not all

    const exported = setup.student.clone();
    removeProjections(exported, setup.pairs);
    expect(exported.graph.nodes.map((n) => n.name)).toEqual(student.graph.nodes.map((n) => n.name));
    expect(exported.graph.getInitializer(pair.margin!.values)).toBeUndefined();
  });

  it('should compute the margin as the mean of the negative part of N(shift, scale^2), like numerical integration', () => {
    const integrated = (scale: number, shift: number): number => {
      const sigma = Math.abs(scale);
      let mass = 0;
      let moment = 0;
      for (let x = shift - 12 * sigma; x < 0; x += sigma * 1e-4) {
        const density = Math.exp(-(((x - shift) / sigma) ** 2) / 2);
        mass += density;
        moment += x * density;
      }
      return moment / mass;
    };
    for (const [scale, shift] of [[1, 0], [0.5, 0.3], [-2, -1], [1.5, 2.5]] as const) {
      expect(Math.abs(marginOfChannel(scale, shift) - integrated(scale, shift))).toBeLessThan(1e-3);
    }
    expect(marginOfChannel(0.2, 5)).toBeCloseTo(-0.6, 12); // negative responses too rare: -3 scale
  });
});
