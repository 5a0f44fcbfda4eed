import type { GaussianProcess } from './GaussianProcess.js';
import { logEi } from './logExpectedImprovement.js';
import { inverseMillsRatio } from './millsRatio.js';
import { logNdtr } from '../math/truncatedNormal.js';

/** A function of the normalized coordinates that the acquisition search maximizes. */
export interface AcquisitionFunction {
  readonly dimension: number;
  value(x: Float64Array): number;
  /** The value, with its gradient over all coordinates written into `gradient`. */
  valueAndGradient(x: Float64Array, gradient: Float64Array): number;
}

/** A GP modelling one objective (maximized) with the best observed value to improve on. */
export interface ObjectiveModel {
  readonly gp: GaussianProcess;
  /** The incumbent: improvement is y - threshold. */
  readonly threshold: number;
}

/** A GP modelling one constraint value; the constraint holds where the value is <= threshold. */
export interface ConstraintModel {
  readonly gp: GaussianProcess;
  readonly threshold: number;
}

// Optuna adds this to the posterior variance so that log(sigma) stays finite at observed points.
const stabilizingNoise = 1e-12;

/**
 * Log expected improvement, plus the log probability that every constraint holds under its own
 * independent GP (Optuna's constrained log EI). Without a feasible trial yet there is nothing to
 * improve on: `objective` is undefined and only the log probability of feasibility is maximized.
 */
export class LogEiAcquisition implements AcquisitionFunction {
  readonly dimension: number;
  private readonly objective: ObjectiveModel | undefined;
  private readonly constraints: readonly ConstraintModel[];
  private readonly meanGradient: Float64Array;
  private readonly varianceGradient: Float64Array;

  constructor(dimension: number, objective: ObjectiveModel | undefined, constraints: readonly ConstraintModel[] = []) {
    if (objective === undefined && constraints.length === 0) throw new RangeError('LogEiAcquisition: expected an objective or constraints');
    this.dimension = dimension;
    this.objective = objective;
    this.constraints = constraints;
    this.meanGradient = new Float64Array(dimension);
    this.varianceGradient = new Float64Array(dimension);
  }

  value(x: Float64Array): number {
    let total = 0;
    if (this.objective !== undefined) {
      const { mean, variance } = this.objective.gp.posterior(x);
      total += logEi(mean, variance + stabilizingNoise, this.objective.threshold).value;
    }
    for (const constraint of this.constraints) {
      const { mean, variance } = constraint.gp.posterior(x);
      total += logNdtr((constraint.threshold - mean) / Math.sqrt(variance + stabilizingNoise));
    }
    return total;
  }

  valueAndGradient(x: Float64Array, gradient: Float64Array): number {
    gradient.fill(0);
    let total = 0;
    const { meanGradient, varianceGradient } = this;
    if (this.objective !== undefined) {
      const { mean, variance } = this.objective.gp.posteriorWithGradient(x, meanGradient, varianceGradient);
      const ei = logEi(mean, variance + stabilizingNoise, this.objective.threshold);
      total += ei.value;
      for (let k = 0; k < this.dimension; k++) {
        gradient[k] = (gradient[k] as number) + ei.dMean * (meanGradient[k] as number) + ei.dVariance * (varianceGradient[k] as number);
      }
    }
    for (const constraint of this.constraints) {
      const { mean, variance } = constraint.gp.posteriorWithGradient(x, meanGradient, varianceGradient);
      const sigma = Math.sqrt(variance + stabilizingNoise);
      const w = (constraint.threshold - mean) / sigma;
      total += logNdtr(w);
      const dw = inverseMillsRatio(w);
      // dw/dmean = -1/sigma; dw/dvariance = -w / (2 sigma^2).
      const dMean = -dw / sigma;
      const dVariance = (-dw * w) / (2 * sigma * sigma);
      for (let k = 0; k < this.dimension; k++) {
        gradient[k] = (gradient[k] as number) + dMean * (meanGradient[k] as number) + dVariance * (varianceGradient[k] as number);
      }
    }
    return total;
  }
}
