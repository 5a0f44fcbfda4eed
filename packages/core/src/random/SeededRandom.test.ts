import { describe, expect, it } from 'vitest';
import { SeededRandom } from './SeededRandom.js';

describe('SeededRandom', () => {
  it('should reproduce the xoshiro128** reference outputs and states', () => {
    // Seed state and expected values generated with the C reference implementation
    // (edorfaus/xoshiro-6502, test-rom/testdata.asm: VerifyValuesXoshiro128 "starstar" column, VerifyStatesXoshiro128).
    const random = SeededRandom.fromState([0x964d4a0c, 0xd40ab895, 0xad7fdecb, 0x3006f0f0]);
    const outputs = [random.nextUint32(), random.nextUint32(), random.nextUint32(), random.nextUint32()];
    expect(outputs).toEqual([0xf1391922, 0x6fe53806, 0xa5be2840, 0xf510ee70]);
    expect(random.state).toEqual([0xfc65379c, 0x52006d70, 0x87487639, 0xf1908343]);
  });

  it('should give the same stream for the same seed and different streams for nearby seeds', () => {
    const draw = (seed: number): number[] => {
      const random = new SeededRandom(seed);
      return Array.from({ length: 8 }, () => random.nextUint32());
    };
    expect(draw(1234)).toEqual(draw(1234));
    expect(draw(0)).not.toEqual(draw(1));
    expect(draw(2 ** 32)).not.toEqual(draw(0));
    expect(draw(-1)).not.toEqual(draw(2 ** 32 - 1));
  });

  it('should continue exactly from a saved state', () => {
    const random = new SeededRandom(7);
    for (let i = 0; i < 5; i++) random.nextUint32();
    const resumed = SeededRandom.fromState(random.state);
    expect(Array.from({ length: 5 }, () => resumed.nextFloat())).toEqual(Array.from({ length: 5 }, () => random.nextFloat()));
  });

  it('should draw floats in [0, 1) and unbiased integers', () => {
    const random = new SeededRandom(42);
    const counts = new Array<number>(6).fill(0);
    let sum = 0;
    let min = 1;
    let max = 0;
    const n = 60_000;
    for (let i = 0; i < n; i++) {
      const f = random.nextFloat();
      min = Math.min(min, f);
      max = Math.max(max, f);
      sum += f;
      counts[random.nextInt(6)]! += 1;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    // Mean of U(0,1) has standard deviation 1/sqrt(12 n) ~ 0.0012; allow 5 sigma.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.006);
    // Each count is Binomial(n, 1/6): sd ~ 91; allow 5 sigma.
    for (const c of counts) expect(Math.abs(c - n / 6)).toBeLessThan(460);
  });

  it('should draw standard normal samples', () => {
    const random = new SeededRandom(3);
    const n = 40_000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const z = random.nextNormal();
      sum += z;
      squares += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.025); // sd of the mean 0.005
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.05); // sd of the variance estimate ~0.007
  });

  it('should return a permutation of 0..n-1, different per draw', () => {
    const random = new SeededRandom(0);
    const first = random.permutation(100);
    const second = random.permutation(100);
    expect([...first].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...first]).not.toEqual([...second]);
    expect(random.permutation(0)).toEqual(new Uint32Array(0));
    expect(random.permutation(1)).toEqual(new Uint32Array([0]));
  });

  it('should refuse bad seeds, states and bounds with a clear error', () => {
    expect(() => new SeededRandom(0.5)).toThrow(/seed must be a whole number/);
    expect(() => SeededRandom.fromState([0, 0, 0, 0])).toThrow(/all zeros/);
    expect(() => SeededRandom.fromState([1, 2, 3, -1])).toThrow(/unsigned 32-bit/);
    expect(() => new SeededRandom(1).nextInt(0)).toThrow(/bound/);
  });

  it('should draw weighted indices with the weights\' frequencies and never a zero weight', () => {
    const random = new SeededRandom(5);
    const n = 40_000;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) counts[random.nextWeightedIndex([1, 0, 3])]! += 1;
    expect(counts[1]).toBe(0);
    // Binomial(n, 1/4): sd ~ 87; allow 5 sigma.
    expect(Math.abs(counts[0]! - n / 4)).toBeLessThan(435);
    expect(() => random.nextWeightedIndex([0, 0])).toThrow(/not all zero/);
  });

  it('should draw floats in [low, high) and fork independent, reproducible streams', () => {
    const random = new SeededRandom(11);
    for (let i = 0; i < 1000; i++) {
      const x = random.nextFloatIn(-3, 5);
      expect(x >= -3 && x < 5).toBe(true);
    }
    const a = new SeededRandom(1).fork();
    const b = new SeededRandom(1).fork();
    const parent = new SeededRandom(1);
    parent.fork();
    const draws = (r: SeededRandom): number[] => Array.from({ length: 4 }, () => r.nextUint32());
    const forked = draws(a);
    expect(forked).toEqual(draws(b));
    expect(forked).not.toEqual(draws(parent));
  });

  it('should give unseeded generators different streams', () => {
    const draws = (r: SeededRandom): number[] => Array.from({ length: 4 }, () => r.nextUint32());
    expect(draws(SeededRandom.fromEntropy())).not.toEqual(draws(SeededRandom.fromEntropy()));
  });
});
