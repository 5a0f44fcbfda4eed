import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompressionReport, ReportedTrial } from './CompressionReport.js';
import { escapeHtml, renderReportHtml } from './renderReportHtml.js';

const chromiumPath = '/usr/bin/chromium';

function trial(number: number, accuracy: number, latency: number, size: number, extra: Partial<ReportedTrial> = {}): ReportedTrial {
  return {
    number,
    state: 'complete',
    params: { 'pruner-structured.ratio.conv1': 0.25 + number / 100, 'quantizer-int8.int8.conv1': true },
    metrics: { accuracy, latency, size, params: 40_000, macs: 300_000 },
    feasible: true,
    infeasibleBecause: [],
    error: undefined,
    durationMs: 1200,
    pareto: false,
    file: undefined,
    passReports: undefined,
    ...extra,
  };
}

const trials: ReportedTrial[] = [
  trial(0, 0.912, 1.9, 150_000, { pareto: true, file: 'pareto/trial-0.onnx' }),
  trial(1, 0.85, 1.2, 90_000, { feasible: false, infeasibleBecause: ['accuracy drop <= 0.01 (baseline 0.92): measured 0.85'] }),
  trial(2, 0.915, 2.4, 160_000, { pareto: true, file: 'pareto/trial-2.onnx' }),
  { ...trial(3, 0, 0, 0), state: 'failed', metrics: undefined, feasible: false, error: 'quantizer-int8 <failed> & stopped' },
];

const report: CompressionReport = {
  config: '/work/autoglm.yaml',
  model: '/work/models/resnet8.onnx',
  target: { device: 'cpu', threads: 1, batch: 64, optimizationLevel: 'all' },
  objectives: [
    { metric: 'accuracy', direction: 'maximize', bound: 'drop <= 0.01' },
    { metric: 'latency', direction: 'minimize', bound: undefined },
  ],
  baseline: { accuracy: 0.92, latency: 8.1, size: 320_000, params: 78_000, macs: 1_200_000 },
  callFloorMs: 0.05,
  best: trials[0],
  pareto: [trials[0] as ReportedTrial, trials[2] as ReportedTrial],
  trials,
  searchSpace: [{ name: 'pruner-structured.ratio.conv1', layer: 'conv1', distribution: { kind: 'float', low: 0, high: 0.7 } }],
  search: { strategy: '@open-autoglm/search-bayes@0.1.0', trialBudget: 4, stoppedBecause: 'trial budget (4) used', elapsedMs: 5400, cacheHits: 1, cacheMisses: 7 },
  createdAt: '2026-11-25T12:00:00.000Z',
};

describe('renderReportHtml', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'autoglm-report-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should write a self-contained page with the before/after table, per-layer parameters, history and escaped text', () => {
    const html = renderReportHtml(report);
    expect(html).not.toMatch(/<script|<link|src="http/);
    expect(html).toContain('8.100 ms');
    expect(html).toContain('4.26x faster');
    expect(html).toContain('-0.80 points');
    expect(html).toContain('pruner-structured.ratio.conv1');
    expect(html).toContain('per-call floor');
    expect(html).toContain(escapeHtml('quantizer-int8 <failed> & stopped'));
    expect(html).not.toContain('<failed>');
    expect(html).toContain('accuracy drop &lt;= 0.01');
  });

  it('should say why a failed final recovery left the searched model as best.onnx', () => {
    const recovery = { overrides: { 'distiller-kd': { epochs: 5 } }, metrics: undefined, adopted: false, infeasibleBecause: [], error: 'The final recovery timed out after 600 s & was stopped' };
    const html = renderReportHtml({ ...report, recovery });
    expect(html).toContain(`failed, best.onnx is the searched model (${escapeHtml(recovery.error)})`);
    expect(html).toContain('best (trial 0)</th>');
  });

  it.skipIf(!existsSync(chromiumPath))('should render in headless Chromium with the Pareto plot drawn', async () => {
    const file = path.join(dir, 'report.html');
    await writeFile(file, renderReportHtml(report));
    const browser = await chromium.launch({ executablePath: chromiumPath });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(pathToFileURL(file).href);
      const plot = page.locator('#pareto-latency svg.plot');
      const box = await plot.boundingBox();
      expect(box?.width).toBeGreaterThan(400);
      expect(box?.height).toBeGreaterThan(250);
      // Three measured trials and the baseline are drawn, and the floor line is inside the plot.
      expect(await page.locator('#pareto-latency .point').count()).toBe(4);
      expect(await page.locator('#pareto-latency line[stroke-dasharray]').count()).toBe(1);
      const screenshot = path.join(dir, 'pareto.png');
      await plot.screenshot({ path: screenshot });
      const png = await readFile(screenshot);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      // A drawn plot is not one flat colour: count distinct pixel bytes across the image.
      expect(new Set(png.subarray(64)).size).toBeGreaterThan(50);
    } finally {
      await browser.close();
    }
  });
});
