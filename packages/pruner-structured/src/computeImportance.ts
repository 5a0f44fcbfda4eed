import { ConfigError, ModelFormatError, SeededRandom } from '@open-autoglm/core';
import { type OnnxGraph, tensorDims, tensorToArray } from '@open-autoglm/onnx';
import type { DependencyGroup, GroupMember } from './analyzeDependencies.js';

/** How the importance of a unit (channel, head, neuron) is scored. */
export type ImportanceCriterion = 'l1' | 'l2' | 'fpgm' | 'bn' | 'taylor' | 'random';

export const IMPORTANCE_CRITERIA: readonly ImportanceCriterion[] = ['l1', 'l2', 'fpgm', 'bn', 'taylor', 'random'];

/** Gradients of the loss by parameter tensor name, for the Taylor criterion. */
export type ParameterGradients = ReadonlyMap<string, Float32Array>;

type TensorMember = Extract<GroupMember, { kind: 'tensor' }>;

/** Values of one member tensor with their dims. */
interface MemberValues {
  readonly dims: readonly number[];
  readonly values: ArrayLike<number>;
}

/**
 * Per-unit sums of `score(value, flatIndex)` over a member's slices: the unit of an element is
 * its index along `member.axis` divided by the indices per unit.
 */
function sumPerUnit(member: TensorMember, unitSize: number, units: number, data: MemberValues, score: (value: number, index: number) => number): Float64Array {
  const perUnit = Math.round(member.perBase * unitSize);
  const axisSize = data.dims[member.axis] ?? 1;
  let inner = 1;
  for (let d = member.axis + 1; d < data.dims.length; d++) inner *= data.dims[d] as number;
  const sums = new Float64Array(units);
  const values = data.values;
  for (let i = 0; i < values.length; i++) {
    const unit = Math.floor((Math.floor(i / inner) % axisSize) / perUnit);
    sums[unit] = (sums[unit] ?? 0) + score(values[i] as number, i);
  }
  return sums;
}

/** The unit vectors of a member (each unit's slice flattened), for distance-based criteria. */
function unitVectors(member: TensorMember, unitSize: number, units: number, data: MemberValues): Float64Array[] {
  const perUnit = Math.round(member.perBase * unitSize);
  const axisSize = data.dims[member.axis] ?? 1;
  let inner = 1;
  for (let d = member.axis + 1; d < data.dims.length; d++) inner *= data.dims[d] as number;
  const length = data.values.length / units;
  const vectors = Array.from({ length: units }, () => new Float64Array(length));
  const fill = new Int32Array(units);
  for (let i = 0; i < data.values.length; i++) {
    const unit = Math.floor((Math.floor(i / inner) % axisSize) / perUnit);
    const at = fill[unit] as number;
    (vectors[unit] as Float64Array)[at] = data.values[i] as number;
    fill[unit] = at + 1;
  }
  return vectors;
}

/**
 * Importance of every unit of `group` (higher = keep), aggregated over the group's members as
 * Torch-Pruning's group importance does: the mean over members of each member's per-unit score.
 * - `l1` / `l2`: sum of |w| / w^2 over the unit's slice of every weight that produces or reads it.
 * - `fpgm`: for the producing weights, the sum of Euclidean distances from the unit's filter to
 *   every other filter (filters near the geometric median are redundant: low score).
 * - `bn`: |gamma| of the group's BatchNorm/InstanceNorm scales; groups without one fall back to `l1`.
 * - `taylor`: |sum of w * dL/dw| over the unit's slices (first order), from `gradients`.
 * - `random`: uniform scores from `seed` (a baseline).
 */
export function computeImportance(
  graph: OnnxGraph,
  group: DependencyGroup,
  criterion: ImportanceCriterion,
  options: { readonly seed?: number; readonly gradients?: ParameterGradients } = {},
): Float64Array {
  const units = group.units;
  if (criterion === 'random') {
    const random = new SeededRandom((options.seed ?? 0) + hashName(group.name));
    return Float64Array.from({ length: units }, () => random.nextFloat());
  }
  const tensorMembers = group.members.filter((m): m is TensorMember => m.kind === 'tensor');
  const valuesOf = (member: TensorMember): MemberValues => {
    const tensor = graph.constantValue(member.tensor);
    if (tensor === undefined) {
      throw new ModelFormatError(`Tensor "${member.tensor}" of group "${group.name}" is no longer a constant; analyze the model again after editing it.`);
    }
    return { dims: tensorDims(tensor), values: tensorToArray(tensor) as ArrayLike<number> };
  };
  const weights = tensorMembers.filter((m) => m.role === 'out' || m.role === 'in');
  let scored: TensorMember[] = weights;
  let score: (member: TensorMember, data: MemberValues) => Float64Array;
  switch (criterion) {
    case 'l1':
      score = (m, d) => sumPerUnit(m, group.unitSize, units, d, (v) => Math.abs(v));
      break;
    case 'l2':
      score = (m, d) => sumPerUnit(m, group.unitSize, units, d, (v) => v * v);
      break;
    case 'bn': {
      const norms = tensorMembers.filter((m) => m.role === 'norm');
      if (norms.length > 0) scored = norms;
      score = (m, d) => sumPerUnit(m, group.unitSize, units, d, (v) => Math.abs(v));
      break;
    }
    case 'fpgm':
      scored = weights.filter((m) => m.role === 'out');
      score = (m, d) => {
        const vectors = unitVectors(m, group.unitSize, units, d);
        const result = new Float64Array(units);
        for (let a = 0; a < units; a++) {
          for (let b = a + 1; b < units; b++) {
            const va = vectors[a] as Float64Array;
            const vb = vectors[b] as Float64Array;
            let sum = 0;
            for (let i = 0; i < va.length; i++) sum += ((va[i] as number) - (vb[i] as number)) ** 2;
            const distance = Math.sqrt(sum);
            result[a] = (result[a] as number) + distance;
            result[b] = (result[b] as number) + distance;
          }
        }
        return result;
      };
      break;
    case 'taylor': {
      const gradients = options.gradients;
      if (gradients === undefined) {
        throw new ConfigError('The taylor criterion needs gradients of the loss (see computeParameterGradients); give them, or choose l1, l2, fpgm, bn or random.');
      }
      scored = weights.filter((m) => gradients.has(m.tensor));
      score = (m, d) => {
        const gradient = gradients.get(m.tensor) as Float32Array;
        const signed = sumPerUnit(m, group.unitSize, units, d, (v, i) => v * (gradient[i] as number));
        return signed.map(Math.abs);
      };
      break;
    }
  }
  const total = new Float64Array(units);
  if (scored.length === 0) return total;
  for (const member of scored) {
    const perUnit = score(member, valuesOf(member));
    for (let u = 0; u < units; u++) total[u] = (total[u] as number) + (perUnit[u] as number) / scored.length;
  }
  return total;
}

/** A small deterministic hash so each group draws its own random stream from one seed. */
function hashName(name: string): number {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619) >>> 0;
  return hash % 1_000_003;
}
