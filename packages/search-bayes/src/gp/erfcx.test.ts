import { describe, expect, it } from 'vitest';
import { erfcx } from './erfcx.js';

// exp(x^2) * erfc(x) from CPython's math.erfc (an independent implementation), and the
// asymptotic series 1/(x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4)) for x = 1000.
const references: readonly (readonly [number, number])[] = [
  [-1, 5.008980080762283],
  [-0.5, 1.952360489182557],
  [0, 1],
  [0.5, 0.6156903441929259],
  [2, 0.2553956763105057],
  [5, 0.11070463773306866],
  [10, 0.056140992743822594],
  [1000, 0.0005641893014533877],
];

describe('erfcx', () => {
  it('should match reference values on both sides of the branch points', () => {
    for (const [x, expected] of references) expect(Math.abs(erfcx(x) - expected) / expected).toBeLessThan(1e-14);
  });

  it('should be continuous where the continued fraction takes over', () => {
    const below = erfcx(2 - 1e-12);
    const above = erfcx(2);
    expect(Math.abs(below - above) / above).toBeLessThan(1e-12);
  });

  it('should tend to 1/(x sqrt(pi)) without underflow for huge x', () => {
    expect(erfcx(1e10) * 1e10 * Math.sqrt(Math.PI)).toBeCloseTo(1, 12);
  });
});
