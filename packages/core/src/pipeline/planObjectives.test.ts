import { describe, expect, it } from 'vitest';
import { autoGlmConfigSchema } from '../config/configSchema.js';
import { describeViolations, planObjectives } from './planObjectives.js';

const objectives = (list: unknown[]) =>
  autoGlmConfigSchema.shape.objectives.parse(list);

describe('planObjectives', () => {
  const baseline = { accuracy: 0.92, latency: 8, size: 300_000 };

  it('should count a bound met exactly as met, whatever binary rounding says', () => {
    // 0.9295 - 0.9195 - 0.01 = 1.0e-17 in doubles: a drop of exactly 1 point (20 of 2,000 samples).
    expect(0.9295 - 0.9195 - 0.01).toBeGreaterThan(0);
    const plan = planObjectives(objectives([{ metric: 'accuracy', maxDrop: 0.01 }, { metric: 'latency', limit: 0.3 }]), { accuracy: 0.9295 });
    expect(plan.constraints.map((c) => c.violation({ accuracy: 0.9195, latency: 0.1 + 0.2 }))).toEqual([0, 0]);
    expect(describeViolations(plan, { accuracy: 0.9195, latency: 0.1 + 0.2 })).toEqual([]);
    expect(plan.constraints[0]?.violation({ accuracy: 0.919 })).toBeCloseTo(0.0005, 12);
  });

  it('should turn maxDrop and limit into Optuna constraints (<= 0 when met) and keep one direction per objective', () => {
    const plan = planObjectives(objectives([{ metric: 'accuracy', maxDrop: 0.01 }, { metric: 'latency', limit: 4 }, { metric: 'size' }]), baseline);
    expect(plan.directions).toEqual(['maximize', 'minimize', 'minimize']);
    expect(plan.values({ accuracy: 0.915, latency: 3, size: 100_000 })).toEqual([0.915, 3, 100_000]);
    const violations = (metrics: Record<string, number>) => plan.constraints.map((c) => c.violation(metrics));
    // 0.92 - 0.915 - 0.01 = -0.005 (met); 3 - 4 = -1 (met).
    expect(violations({ accuracy: 0.915, latency: 3 })[0]).toBeCloseTo(-0.005, 12);
    expect(violations({ accuracy: 0.915, latency: 3 })[1]).toBe(-1);
    expect(violations({ accuracy: 0.9, latency: 5 })[0]).toBeCloseTo(0.01, 12);
    expect(violations({ accuracy: 0.9, latency: 5 })[1]).toBe(1);
    expect(describeViolations(plan, { accuracy: 0.9, latency: 5 })).toEqual(['accuracy drop <= 0.01 (baseline 0.92): measured 0.9000', 'latency <= 4: measured 5']);
  });

  it('should choose the first unbounded objective as primary, and say when every objective is bounded', () => {
    const open = planObjectives(objectives([{ metric: 'accuracy', maxDrop: 0.01 }, { metric: 'latency' }, { metric: 'size' }]), baseline);
    expect(open.primaryMetric).toBe('latency');
    expect(open.everyObjectiveBounded).toBe(false);
    const bounded = planObjectives(objectives([{ metric: 'accuracy', maxDrop: 0.01 }, { metric: 'size', limit: 100_000 }]), baseline);
    expect(bounded.primaryMetric).toBe('accuracy');
    expect(bounded.everyObjectiveBounded).toBe(true);
  });

  it('should bound a maximized metric from below with limit, and count a missing metric as violated', () => {
    const plan = planObjectives(objectives([{ metric: 'accuracy', limit: 0.9 }]), baseline);
    expect(plan.constraints[0]?.violation({ accuracy: 0.95 })).toBeCloseTo(-0.05, 12);
    expect(plan.constraints[0]?.violation({})).toBe(Number.POSITIVE_INFINITY);
  });
});
