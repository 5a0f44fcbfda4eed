import { readFile } from 'node:fs/promises';
import { ConfigError } from '@open-autoglm/core';
import { describe, expect, it } from 'vitest';
import { measureLatency, summarizeLatencies } from './measureLatency.js';
import { createSession } from './session.js';

const fixture = (name: string): string => new URL(`../../../fixtures/${name}`, import.meta.url).pathname;

describe('summarizeLatencies', () => {
  it('should interpolate percentiles between ranks like numpy', () => {
    // numpy.percentile([1, 2, 3, 4, 10], [50, 90]) -> [3, 7.6]
    expect(summarizeLatencies([10, 1, 4, 2, 3])).toEqual({ p50Ms: 3, p90Ms: expect.closeTo(7.6, 12), meanMs: 4, minMs: 1, maxMs: 10 });
    // Even count: numpy.percentile([1, 2, 3, 4], [50, 90]) -> [2.5, 3.7]
    const even = summarizeLatencies([4, 3, 2, 1]);
    expect(even.p50Ms).toBe(2.5);
    expect(even.p90Ms).toBeCloseTo(3.7, 12);
    expect(summarizeLatencies([0.5])).toEqual({ p50Ms: 0.5, p90Ms: 0.5, meanMs: 0.5, minMs: 0.5, maxMs: 0.5 });
  });

  it('should refuse an empty list', () => {
    expect(() => summarizeLatencies([])).toThrow(ConfigError);
  });
});

describe('measureLatency', () => {
  it('should time a model file on a fresh 1-thread session and report sane statistics', async () => {
    const result = await measureLatency(fixture('lenet5-fmnist.onnx'), { batch: 8, runs: 20, warmupRuns: 2 });
    expect(result.runs).toBe(20);
    expect(result.batch).toBe(8);
    expect(result.threads).toBe(1);
    expect(result.minMs).toBeGreaterThan(0);
    expect(result.minMs).toBeLessThanOrEqual(result.p50Ms);
    expect(result.p50Ms).toBeLessThanOrEqual(result.p90Ms);
    expect(result.p90Ms).toBeLessThanOrEqual(result.maxMs);
    expect(result.meanMs).toBeGreaterThanOrEqual(result.minMs);
    expect(result.meanMs).toBeLessThanOrEqual(result.maxMs);
    expect(result.maxMs).toBeLessThan(5_000);
  });

  it('should time model bytes with the threads asked for, and an int64 token model', async () => {
    const bytes = await readFile(fixture('tinybert-spam.onnx'));
    const result = await measureLatency(bytes, { batch: 2, runs: 5, warmupRuns: 1, threads: 2 });
    expect(result.threads).toBe(2);
    expect(result.batch).toBe(2);
    expect(result.p50Ms).toBeGreaterThan(0);
  });

  it('should time an existing session, refusing thread settings it cannot apply', async () => {
    const session = await createSession(fixture('lenet5-fmnist.onnx'), { device: 'cpu', threads: 1 });
    try {
      const result = await measureLatency(session, { runs: 3, warmupRuns: 0 });
      expect(result).toMatchObject({ runs: 3, batch: 1, threads: 1 });
      await expect(measureLatency(session, { threads: 2 })).rejects.toThrow(/already created with 1 thread\(s\)/);
      await expect(measureLatency(session, { target: { optimizationLevel: 'basic' } })).rejects.toThrow(ConfigError);
    } finally {
      await session.release();
    }
  });

  it('should refuse meaningless run counts and batch sizes', async () => {
    const model = fixture('lenet5-fmnist.onnx');
    await expect(measureLatency(model, { runs: 0 })).rejects.toThrow(/runs must be a whole number >= 1/);
    await expect(measureLatency(model, { warmupRuns: -1 })).rejects.toThrow(/warmupRuns/);
    await expect(measureLatency(model, { batch: 0 })).rejects.toThrow(/batch must be/);
  });
});
