import { describe, expect, it } from 'vitest';
import type { GradientRuleTable } from '../GradientRule.js';
import { checkGradients } from './checkGradients.js';

describe('checkGradients', () => {
  it('should report a small error for a correct rule and a large one for a wrong rule', async () => {
    const testCase = { nodes: [{ op: 'Tanh', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', dims: [3, 4] }], outputs: ['y'] };
    const correct = await checkGradients(testCase);
    expect(correct.precision).toBe('float64');
    expect(correct.maxRelativeError).toBeLessThan(1e-4);
    // Tanh's gradient without the (1 - y^2) factor.
    const wrong: GradientRuleTable = { Tanh: { backward: (c) => [c.outputGradient(0)] } };
    const detected = await checkGradients({ ...testCase, rules: wrong });
    expect(detected.maxRelativeError).toBeGreaterThan(0.05);
  });

  it('should check the analytic gradient against differences element by element', async () => {
    const result = await checkGradients({
      nodes: [{ op: 'Mul', inputs: ['a', 'b'], outputs: ['y'] }],
      inputs: [
        { name: 'a', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) },
        { name: 'b', dims: [2, 2], data: Float32Array.of(0.5, -1, 2, 0) },
      ],
      outputs: ['y'],
    });
    const a = result.inputs.a;
    expect(a).toBeDefined();
    // d/da mean((a*b - t)^2) = 2 (a b - t) b / 4: zero where b is zero.
    expect(a?.numeric[3]).toBe(0);
    expect(a?.analytic[3]).toBe(0);
    expect(Array.from(a?.analytic ?? []).map((v, i) => v - (a?.numeric[i] ?? 0)).every((d) => Math.abs(d) < 1e-5)).toBe(true);
  });

  it('should fall back to a float32 forward for ops without a double kernel', async () => {
    const result = await checkGradients({ nodes: [{ op: 'Erf', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', dims: [6] }], outputs: ['y'] });
    expect(result.precision).toBe('float32');
    expect(result.maxRelativeError).toBeLessThan(1e-3);
    const forced = await checkGradients(
      { nodes: [{ op: 'Tanh', inputs: ['x'], outputs: ['y'] }], inputs: [{ name: 'x', dims: [6] }], outputs: ['y'] },
      { precision: 'float32' },
    );
    expect(forced.precision).toBe('float32');
    expect(forced.maxRelativeError).toBeLessThan(1e-3);
  });
});
