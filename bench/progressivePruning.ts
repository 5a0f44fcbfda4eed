/**
 * `npm run bench:progressive-pruning [-- --schedules one-shot,two-step,three-step --seed 0 --quick]`:
 * does reaching 50% of ResNet-8's channels in steps, inside the same budget of 3 epochs of
 * knowledge distillation over fmnist-train-10k, recover more than pruning at once (issue #7)?
 *
 * Every schedule composes the public APIs: `StructuredPruner` (L1, every prunable group at the
 * step's ratio of its ORIGINAL channel count, ranked on the current weights), then BatchNorm
 * re-estimation (`recalibrateBatchNorm`, 512 fmnist-calib samples) or least-squares
 * reconstruction (`reconstructConsumers`, 1,000 fmnist-calib samples, against the model as it was
 * before this step), then `distill` with bench:distill's recipe (KD alpha 0.5, T 2, AdamW without
 * weight decay, lr 5e-3 cosine to 0 restarted at every step, batch 64, the kept-channel feature
 * term of `features: 'pruned'` with weight 1) for the step's epochs. The epochs of all steps add
 * up to 3: every schedule sees 3 x 10,000 training samples, as the one-shot recipe does.
 *
 * `features: 'pruned'` finds the teacher channels a student kept by comparing BatchNorm scales,
 * which no longer holds once the student has trained; so the bench keeps, for every ReLU output,
 * the teacher channels the student still has (composed step by step from `setUpFeaturePairs` on
 * each freshly pruned model against the model it was pruned from), gathers them in a copy of the
 * teacher and hands `distill` the explicit pairs. On a one-shot prune these pairs are exactly
 * the ones `features: 'pruned'` makes.
 *
 * `fade-*` schedules first train the full-width model for one epoch, split in 4 consecutive
 * quarters of the data: before each quarter the BatchNorm scale and shift of the channels the
 * one-shot L1 plan will remove are multiplied down (`fade-then-prune`: to 3/4, 1/2, 1/4, then 0
 * of their value; `fade-geometric`: halved every quarter, 0 at the end; `fade-mask`: 3/4, 1/2, 1/4
 * and 0, applied by a constant mask after each BatchNorm that training cannot grow back), so
 * the network learns to do without them while they fade; features are distilled on the kept
 * channels only. Then the faded channels are pruned (criterion `bn`: their scale is 0) and 2
 * epochs follow (`fade-mask-half`: the same mask fade over the first half epoch, then 2.5 epochs). This stands in for a group-lasso penalty on those scales, which the training
 * engine cannot target: its `weightDecay` loss term covers whole initializers (not channels of
 * a BatchNorm scale), and `distill` takes no extra loss terms.
 *
 * Accuracy on fmnist-val-2k after every epoch; the figure that counts is the last epoch's (no
 * selection on the evaluation split: intermediate steps get no validation data, their accuracy is
 * measured separately). `--quick` trains on the first 1,280 samples and writes nothing.
 *
 * Writes bench/results/progressive-pruning.json (runs added as `<schedule>@seed<N>` as they finish).
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distill, type FeaturePair, setUpFeaturePairs } from '@open-autoglm/distiller-kd';
import { arrayToTensor, DataType, inferShapes, makeNode, type NodeProto, OnnxModel, tensorToArray, writeFileAtomic } from '@open-autoglm/onnx';
import { type ImportanceCriterion, modelFeeds, recalibrateBatchNorm, reconstructConsumers, StructuredPruner } from '@open-autoglm/pruner-structured';
import { type Dataset, loadDataset, modelAccuracy } from '@open-autoglm/runtime';
import { benchOption, requireTrainingSplitFiles } from './benchSupport.js';

/** One pruning step: prune to `ratio` of the original channels of every group, recover, distill `epochs`. */
interface Step {
  readonly ratio: number;
  /** Whole epochs, or a fractional last step (its last epoch cut short by a step budget). */
  readonly epochs: number;
  readonly recovery: 'batchnorm' | 'reconstruct';
}

interface Schedule {
  /**
   * One epoch at full width fading out the channels the one-shot plan removes, before the steps:
   * the epoch is split into `remaining.length` consecutive slices of the data, each trained with
   * those channels' BatchNorm scale and shift at `remaining[i]` of their value (then set to 0).
   */
  readonly fade?: {
    readonly remaining: readonly number[];
    /**
     * `batchnorm` multiplies the channels' BatchNorm scale and shift (which training can grow
     * back); `mask` multiplies each BatchNorm's output by a constant per-channel mask (a Mul
     * node, not a parameter, so training cannot undo it), removed before pruning. Default `batchnorm`.
     */
    readonly by?: 'batchnorm' | 'mask';
    /** Share of one epoch the fade trains on (its first samples); default 1. */
    readonly fraction?: number;
  };
  readonly steps: readonly Step[];
}

const SCHEDULES: Record<string, Schedule> = {
  'one-shot': { steps: [{ ratio: 0.5, epochs: 3, recovery: 'batchnorm' }] },
  'two-step': {
    steps: [
      { ratio: 0.25, epochs: 1, recovery: 'batchnorm' },
      { ratio: 0.5, epochs: 2, recovery: 'batchnorm' },
    ],
  },
  'three-step': {
    steps: [
      { ratio: 1 / 6, epochs: 1, recovery: 'batchnorm' },
      { ratio: 1 / 3, epochs: 1, recovery: 'batchnorm' },
      { ratio: 0.5, epochs: 1, recovery: 'batchnorm' },
    ],
  },
  'two-step-reconstruct': {
    steps: [
      { ratio: 0.25, epochs: 1, recovery: 'reconstruct' },
      { ratio: 0.5, epochs: 2, recovery: 'reconstruct' },
    ],
  },
  'three-step-reconstruct': {
    steps: [
      { ratio: 1 / 6, epochs: 1, recovery: 'reconstruct' },
      { ratio: 1 / 3, epochs: 1, recovery: 'reconstruct' },
      { ratio: 0.5, epochs: 1, recovery: 'reconstruct' },
    ],
  },
  'fade-then-prune': { fade: { remaining: [0.75, 0.5, 0.25, 0] }, steps: [{ ratio: 0.5, epochs: 2, recovery: 'batchnorm' }] },
  // Halved every quarter: the last cut (from 1/16 to 0, right before pruning) is small.
  'fade-geometric': { fade: { remaining: [0.5, 0.25, 0.125, 0.0625] }, steps: [{ ratio: 0.5, epochs: 2, recovery: 'batchnorm' }] },
  'fade-mask': { fade: { remaining: [0.75, 0.5, 0.25, 0], by: 'mask' }, steps: [{ ratio: 0.5, epochs: 2, recovery: 'batchnorm' }] },
  // Faded over half an epoch, leaving 2.5 epochs at the final width.
  'fade-mask-half': { fade: { remaining: [0.75, 0.5, 0.25, 0], by: 'mask', fraction: 0.5 }, steps: [{ ratio: 0.5, epochs: 2.5, recovery: 'batchnorm' }] },
};

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const fixtures = join(repo, 'fixtures');
const SEED = Number(benchOption('--seed') ?? 0);
const QUICK = process.argv.includes('--quick');
const OUT = join(here, 'results', 'progressive-pruning.json');
const target = { device: 'cpu' as const, threads: 1 };
const RECIPE = { alpha: 0.5, temperature: 2, featureWeight: 1, learningRate: 5e-3, batchSize: 64, optimizer: { kind: 'adamw' as const, weightDecay: 0 } };
const only = (benchOption('--schedules') ?? 'one-shot,two-step,three-step').split(',').filter((n) => n !== '');
const unknown = only.filter((n) => !(n in SCHEDULES));
if (unknown.length > 0) {
  console.error(`Unknown schedule(s) ${unknown.join(', ')}; choose among ${Object.keys(SCHEDULES).join(', ')}.`);
  process.exit(1);
}
const trainingSplit = requireTrainingSplitFiles('bench:progressive-pruning');

const teacher = await OnnxModel.load(join(fixtures, 'resnet8-fmnist.onnx'));
const fullTrain = await loadDataset({ x: trainingSplit.x, y: trainingSplit.y });
const train = QUICK ? fullTrain.slice(0, 1280) : fullTrain;
const validation = await loadDataset({ x: join(fixtures, 'fmnist-val-2k.x.npy'), y: join(fixtures, 'fmnist-val-2k.y.npy') });
const calibration = await loadDataset({ x: join(fixtures, 'fmnist-calib.x.npy') });
const inputs = teacher.graph.inputs.map((i) => i.name);
const teacherPruner = new StructuredPruner(teacher);
const groups = teacherPruner.prunableGroups();
const originalAccuracy = await modelAccuracy(teacher, validation, target, { batch: 250 });
const ortVersion = (JSON.parse(readFileSync(join(repo, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;

/** Channels every group keeps at `ratio` of its original count (the one-shot pruner's arithmetic). */
function keptAtRatio(ratio: number): Map<string, number> {
  return teacherPruner.keptCounts({ perLayer: Object.fromEntries(groups.map((g) => [g.name, ratio])), criterion: 'l1' });
}

/**
 * For every ReLU output of the student, the teacher channels it holds, in order. Updated after
 * each prune from the pairs `setUpFeaturePairs` matches between the freshly pruned model and the
 * model it was pruned from (their BatchNorm scales still agree at that moment).
 */
type TeacherChannels = Map<string, readonly number[]>;

function fullWidthChannels(): TeacherChannels {
  const shapes = inferShapes(teacher.proto).shapes;
  const channels: TeacherChannels = new Map();
  for (const pair of setUpFeaturePairs(teacher, teacher, 'pruned', SEED).pairs) {
    const width = shapes.get(pair.student)?.dims?.[1];
    if (typeof width !== 'number') throw new Error(`The channel count of ${pair.student} is unknown.`);
    channels.set(pair.student, Array.from({ length: width }, (_, i) => i));
  }
  return channels;
}

function composeChannels(before: TeacherChannels, pruned: OnnxModel, from: OnnxModel): TeacherChannels {
  const after: TeacherChannels = new Map(before);
  for (const pair of setUpFeaturePairs(pruned, from, 'pruned', SEED).pairs) {
    const previous = before.get(pair.student);
    if (previous === undefined) throw new Error(`Lost track of the teacher channels of ${pair.student}.`);
    if (pair.keptChannels !== undefined) after.set(pair.student, pair.keptChannels.map((i) => previous[i] as number));
  }
  return after;
}

/**
 * A teacher copy that also outputs, for every student ReLU output, the teacher's same tensor on
 * the channels the student holds; `studentKept` (fade) narrows both sides to those channels.
 */
function featureSetup(student: OnnxModel, channels: TeacherChannels, studentKept?: TeacherChannels): { teacher: OnnxModel; student: OnnxModel; pairs: FeaturePair[] } {
  const teacherCopy = teacher.clone();
  const studentCopy = studentKept === undefined ? student : student.clone();
  const pairs: FeaturePair[] = [];
  for (const [tensor, kept] of studentKept ?? channels) {
    const gathered = gather(teacherCopy, tensor, kept, 'teacher');
    const studentTensor = studentKept === undefined ? tensor : gather(studentCopy, tensor, kept, 'student');
    pairs.push({ student: studentTensor, teacher: gathered });
  }
  return { teacher: teacherCopy, student: studentCopy, pairs };
}

function gather(model: OnnxModel, tensor: string, channels: readonly number[], side: string): string {
  const graph = model.graph;
  const indices = graph.uniqueName(`progressive.${side}.kept.${tensor}.indices`);
  const output = graph.uniqueName(`progressive.${side}.kept.${tensor}`);
  graph.setInitializer(arrayToTensor(indices, BigInt64Array.from(channels, (i) => BigInt(i)), [channels.length], DataType.INT64));
  graph.addNode(makeNode('Gather', [tensor, indices], [output], { axis: 1 }, output));
  return output;
}

/** Removes the student-side Gather nodes `featureSetup` added for a fade epoch. */
function removeGathers(model: OnnxModel): void {
  const graph = model.graph;
  for (const node of [...graph.nodes]) {
    if (node.opType !== 'Gather' || !node.name.startsWith('progressive.student.kept.')) continue;
    graph.removeNode(node);
    graph.removeInitializer(node.input[1] ?? '');
  }
}

/** Prunes `model` so every group keeps `kept` channels (criterion on its current weights); the input is not modified. */
function pruneTo(model: OnnxModel, kept: ReadonlyMap<string, number>, criterion: ImportanceCriterion) {
  const pruner = new StructuredPruner(model);
  const current = new Map(pruner.prunableGroups().map((g) => [g.name, g.units]));
  const perLayer = Object.fromEntries([...kept].map(([name, count]) => [name, ((current.get(name) ?? count) - count) / (current.get(name) ?? count)]));
  const result = pruner.prune({ perLayer, criterion });
  for (const group of result.report.groups) {
    const wanted = kept.get(group.group);
    if (wanted !== undefined && group.unitsAfter !== wanted) throw new Error(`${group.group} kept ${group.unitsAfter} channels, not ${wanted}.`);
  }
  return { pruner, result };
}

/**
 * Multiplies the BatchNorm scale and shift of the channels the one-shot plan removes by `factor`.
 * A shift the exporter shares between two BatchNorms of one group (read through Identity) is
 * scaled once.
 */
function fadeRemovedChannels(model: OnnxModel, removed: ReadonlyMap<string, readonly number[]>, factor: number): void {
  const graph = model.graph;
  const initializerOf = (name: string): string => {
    const producer = graph.producerOf(name);
    return producer?.opType === 'Identity' && producer.input[0] !== undefined ? initializerOf(producer.input[0]) : name;
  };
  for (const group of teacherPruner.analysis.groups) {
    const channels = removed.get(group.name);
    if (channels === undefined) continue;
    const names = new Set<string>();
    for (const member of group.members) {
      if (member.kind !== 'tensor' || member.role !== 'norm') continue;
      const node = graph.nodes.find((n) => n.name === member.node);
      for (const input of [node?.input[1], node?.input[2]]) if (input !== undefined) names.add(initializerOf(input));
    }
    for (const name of names) {
      const tensor = graph.getInitializer(name);
      if (tensor === undefined) throw new Error(`The BatchNorm scale or shift ${name} of group ${group.name} is not an initializer.`);
      const values = Float32Array.from(tensorToArray(tensor) as Float32Array);
      for (const c of channels) values[c] = (values[c] as number) * factor;
      graph.setInitializer(arrayToTensor(name, values, tensor.dims.map(Number)));
    }
  }
}

const MASK_PREFIX = 'progressive.fade.mask.';

/**
 * A Constant node holding a group's mask: ones, and `value` at the `removed` channels. A Constant
 * rather than an initializer: the training step would train a Mul's initializer as a parameter.
 */
function maskNode(group: string, units: number, removed: readonly number[], value: number): NodeProto {
  const values = new Float32Array(units).fill(1);
  for (const c of removed) values[c] = value;
  const name = `${MASK_PREFIX}${group}`;
  return makeNode('Constant', [], [name], { value: arrayToTensor(name, values, [1, units, 1, 1]) }, name);
}

/** Puts a Mul by its group's mask (all ones) after every BatchNorm of the groups in `removed`. */
function insertFadeMasks(model: OnnxModel, removed: ReadonlyMap<string, readonly number[]>): void {
  const graph = model.graph;
  for (const group of teacherPruner.analysis.groups) {
    const channels = removed.get(group.name);
    if (channels === undefined) continue;
    // Inserted, not sorted in: the pruner names groups after their first layer in node order.
    const mask = graph.insertNodeBefore(graph.nodes[0] as NodeProto, maskNode(group.name, group.units, channels, 1)).output[0] as string;
    for (const member of group.members) {
      if (member.kind !== 'tensor' || member.role !== 'norm') continue;
      const batchNorm = graph.nodes.find((n) => n.name === member.node);
      const output = batchNorm?.output[0];
      if (batchNorm === undefined || output === undefined) throw new Error(`No BatchNorm ${member.node} in the student.`);
      const masked = graph.uniqueName(`${output}.masked`);
      graph.replaceUses(output, masked);
      graph.insertNodeAfter(batchNorm, makeNode('Mul', [output, mask], [masked], {}, `${MASK_PREFIX}${member.node}`));
    }
  }
}

/** Sets every mask's `removed` channels to `value` (the kept ones stay 1). */
function setFadeMasks(model: OnnxModel, removed: ReadonlyMap<string, readonly number[]>, value: number): void {
  const graph = model.graph;
  for (const group of teacherPruner.analysis.groups) {
    const channels = removed.get(group.name);
    const node = graph.nodes.find((n) => n.name === `${MASK_PREFIX}${group.name}`);
    if (channels === undefined || node === undefined) continue;
    graph.insertNodeBefore(node, maskNode(group.name, group.units, channels, value));
    graph.removeNode(node);
  }
}

/** Removes the masks again (the BatchNorm outputs read directly). */
function removeFadeMasks(model: OnnxModel): void {
  const graph = model.graph;
  for (const node of [...graph.nodes]) {
    if (!node.name.startsWith(MASK_PREFIX)) continue;
    graph.removeNode(node);
    if (node.opType === 'Mul') graph.replaceUses(node.output[0] ?? '', node.input[0] ?? '');
  }
}

const percent = (a: number | null | undefined): string => (a === null || a === undefined ? 'n/a' : (a * 100).toFixed(2));

interface StepRecord {
  readonly ratio: number;
  readonly keptChannels: Record<string, number>;
  readonly params: number;
  readonly recovery: Step['recovery'];
  readonly accuracyAsPruned: number;
  readonly accuracyAfterRecovery: number;
  readonly epochs: number;
  readonly validationAccuracyPerEpoch: readonly (number | null)[];
  readonly accuracyAfterTraining: number;
  readonly updates: number;
  readonly trainingSeconds: number;
}

async function runSchedule(name: string, schedule: Schedule): Promise<void> {
  let model = teacher.clone();
  let channels = fullWidthChannels();
  const perEpoch: (number | null)[] = [];
  const started = performance.now();
  let fadeRecord: object | undefined;
  let fadedKept: TeacherChannels | undefined;
  if (schedule.fade !== undefined) {
    // The channels the one-shot L1 plan removes fade out while the full-width model trains.
    const plan = teacherPruner.plan({ perLayer: Object.fromEntries(groups.map((g) => [g.name, 0.5])), criterion: 'l1' });
    const removed = new Map(groups.map((g) => [g.name, Array.from({ length: g.units }, (_, i) => i).filter((i) => !(plan.get(g.name) ?? []).includes(i))]));
    const kept = composeChannels(channels, teacherPruner.prune({ perLayer: Object.fromEntries(groups.map((g) => [g.name, 0.5])), criterion: 'l1' }).model, teacher);
    const remaining = schedule.fade.remaining;
    const quarters = remaining.length;
    const quarterSize = Math.ceil((train.size * (schedule.fade.fraction ?? 1)) / quarters);
    const accuracies: number[] = [];
    const byMask = schedule.fade.by === 'mask';
    if (byMask) insertFadeMasks(model, removed);
    for (let q = 0; q < quarters; q++) {
      if (byMask) {
        setFadeMasks(model, removed, remaining[q] as number);
      } else {
        // The channels trained in between, so each cut is relative to their current value.
        const previous = q === 0 ? 1 : (remaining[q - 1] as number);
        fadeRemovedChannels(model, removed, previous === 0 ? 0 : (remaining[q] as number) / previous);
      }
      const setup = featureSetup(model, channels, kept);
      const result = await distill({
        ...RECIPE,
        teacher: setup.teacher,
        student: setup.student,
        features: setup.pairs,
        train: train.slice(q * quarterSize, Math.min(train.size, (q + 1) * quarterSize)),
        epochs: 1,
        schedule: 'constant',
        seed: SEED + q,
        target,
      });
      model = result.model;
      removeGathers(model);
      accuracies.push(await modelAccuracy(model, validation, target, { batch: 250 }));
      console.log(`${name}: fade quarter ${q + 1}/${quarters}: ${percent(accuracies.at(-1))}%`);
    }
    perEpoch.push(accuracies.at(-1) ?? null);
    if (byMask) removeFadeMasks(model);
    // Set to 0 (they may also have regrown a little in training): the pruned channels are exactly the faded ones.
    fadeRemovedChannels(model, removed, 0);
    fadedKept = kept;
    fadeRecord = { remaining, lr: 'constant 5e-3 per quarter', accuracyPerQuarter: accuracies };
  }
  const steps: StepRecord[] = [];
  for (const step of schedule.steps) {
    const kept = keptAtRatio(step.ratio);
    const from = model;
    const { pruner, result } = pruneTo(from, kept, schedule.fade === undefined ? 'l1' : 'bn');
    let student = result.model;
    channels = composeChannels(channels, student, from);
    if (fadedKept !== undefined && [...fadedKept].some(([tensor, kept]) => channels.get(tensor)?.join() !== kept.join())) {
      throw new Error('Pruning the faded model by BatchNorm scale removed other channels than the faded ones.');
    }
    const accuracyAsPruned = await modelAccuracy(student, validation, target, { batch: 250 });
    if (step.recovery === 'reconstruct') {
      await reconstructConsumers(from, student, pruner.analysis, result.plan, Array.from(modelFeeds(calibration, inputs, 64, 1000)), { seed: SEED });
    } else {
      await recalibrateBatchNorm(student, modelFeeds(calibration, inputs, 64, 512));
    }
    const accuracyAfterRecovery = await modelAccuracy(student, validation, target, { batch: 250 });
    // Only a whole-epoch last step validates per epoch (distill then returns the best epoch's model, so the figure kept is the
    // last epoch's); a step cut short mid-epoch would have its final model evaluated only when it beats the best, so it, like
    // an intermediate step, gets no validation data and its final model is measured here.
    const last = step === schedule.steps.at(-1) && Number.isInteger(step.epochs);
    const setup = featureSetup(student, channels);
    const distilled = await distill({
      ...RECIPE,
      teacher: setup.teacher,
      student: setup.student,
      features: setup.pairs,
      train,
      ...(last ? { validation } : {}),
      // A fractional last epoch ends on a step budget (the cosine spans the budget).
      epochs: Math.ceil(step.epochs),
      ...(Number.isInteger(step.epochs) ? {} : { steps: Math.round(step.epochs * Math.ceil(train.size / RECIPE.batchSize)) }),
      seed: SEED,
      target,
    });
    student = distilled.model;
    const stepPerEpoch = last ? distilled.history.map((h) => h.validationAccuracy) : [await modelAccuracy(student, validation, target, { batch: 250 })];
    if (!last && step !== schedule.steps.at(-1) && step.epochs > 1) throw new Error('An intermediate step of more than one epoch would report only its last epoch.');
    perEpoch.push(...stepPerEpoch);
    steps.push({
      ratio: +step.ratio.toFixed(4),
      keptChannels: Object.fromEntries(result.report.groups.map((g) => [g.group, g.unitsAfter])),
      params: result.report.actual.params,
      recovery: step.recovery,
      accuracyAsPruned,
      accuracyAfterRecovery,
      epochs: step.epochs,
      validationAccuracyPerEpoch: stepPerEpoch,
      accuracyAfterTraining: stepPerEpoch.at(-1) ?? Number.NaN,
      updates: distilled.steps,
      trainingSeconds: +distilled.history.reduce((s, h) => s + h.seconds, 0).toFixed(2),
    });
    console.log(
      `${name}: ${percent(step.ratio)}% pruned: ${percent(accuracyAsPruned)}% as pruned, ${percent(accuracyAfterRecovery)}% after ${step.recovery}, ` +
        `per epoch ${stepPerEpoch.map(percent).join(', ')}%`,
    );
    model = student;
  }
  const run = {
    date: new Date().toISOString(),
    loadAverage: loadavg().map((v) => +v.toFixed(2)),
    seed: SEED,
    schedule,
    ...(fadeRecord === undefined ? {} : { fade: fadeRecord }),
    steps,
    validationAccuracyPerEpoch: perEpoch,
    finalAccuracy: perEpoch.at(-1) ?? null,
    wallSeconds: +((performance.now() - started) / 1000).toFixed(1),
  };
  console.log(`${name}@seed${SEED}: final ${percent(run.finalAccuracy)}% (per epoch ${perEpoch.map(percent).join(', ')}; ${run.wallSeconds} s)`);
  if (QUICK) return;
  const previous = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as { runs: Record<string, unknown> }) : undefined;
  const file = {
    benchmark: 'progressive-pruning',
    machine: { cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: cpus().length, platform: `${process.platform}/${process.arch}` },
    versions: { node: process.version, onnxruntimeNode: ortVersion },
    threads: target.threads,
    budget: '3 epochs over fmnist-train-10k (30,000 training samples) per schedule, batch 64',
    recipe:
      'every step: L1 on the current weights, every prunable group to the ratio of its original channels; BatchNorm re-estimated on 512 fmnist-calib samples ' +
      '(or least-squares reconstruction on 1,000); KD alpha 0.5, T 2, kept-channel features (weight 1), AdamW wd 0, lr 5e-3 cosine per step; accuracy on fmnist-val-2k',
    originalAccuracy,
    runs: { ...previous?.runs, [`${name}@seed${SEED}`]: run },
  };
  await writeFileAtomic(OUT, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
}

console.log(`resnet8-fmnist: ${percent(originalAccuracy)}% on fmnist-val-2k; ${groups.length} prunable groups; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
for (const name of only) await runSchedule(name, SCHEDULES[name] as Schedule);
