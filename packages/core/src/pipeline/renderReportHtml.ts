import type { CompressionReport, ReportedTrial } from './CompressionReport.js';

/**
 * `report.html`: one self-contained page (inline CSS and SVG, no script, no network) with the
 * Pareto scatters (accuracy vs latency with the runtime's per-call floor, accuracy vs size), the
 * before/after table, the chosen per-layer parameters and the search history.
 */
export function renderReportHtml(report: CompressionReport): string {
  const measured = report.trials.filter((t) => t.metrics !== undefined);
  const best = report.best;
  const failed = report.trials.filter((t) => t.state === 'failed');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Open-AutoGLM report: ${escapeHtml(baseName(report.model))}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #dde; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .25rem .6rem; border-bottom: 1px solid #eef; text-align: right; }
th:first-child, td:first-child { text-align: left; } .plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: .85rem; color: #555; max-width: 520px; }
.infeasible { color: #a33; } .note { color: #555; font-size: .9rem; } code { background: #f3f4f8; padding: 0 .2rem; }
</style>
</head>
<body>
<h1>Compression report: ${escapeHtml(baseName(report.model))}</h1>
<p class="note">Config <code>${escapeHtml(report.config)}</code>; target ${escapeHtml(report.target.device)}, ${report.target.threads} thread(s), batch ${report.target.batch}, optimization ${escapeHtml(report.target.optimizationLevel)};
strategy ${escapeHtml(report.search.strategy)}; ${report.trials.length} trial(s) of ${report.search.trialBudget}, stopped: ${escapeHtml(report.search.stoppedBecause)}; ${(report.search.elapsedMs / 1000).toFixed(1)} s;
pass cache ${report.search.cacheHits} hit(s), ${report.search.cacheMisses} miss(es).</p>
<p>Objectives: ${report.objectives.map((o) => `${escapeHtml(o.metric)} (${o.direction}${o.bound === undefined ? '' : `, ${escapeHtml(o.bound)}`})`).join('; ')}.</p>

<h2>Before and after</h2>
${best === undefined ? '<p class="infeasible">No trial met every bound: there is no best model.</p>' : beforeAfterTable(report, best)}
${report.recovery === undefined ? '' : `<p class="note">Final recovery (${escapeHtml(JSON.stringify(report.recovery.overrides))}): ${report.recovery.adopted ? 'adopted as best.onnx' : report.recovery.error !== undefined ? `failed, best.onnx is the searched model (${escapeHtml(report.recovery.error)})` : `not adopted (${escapeHtml(report.recovery.infeasibleBecause.join('; ') || 'less accurate than the searched model')})`}.</p>`}

<h2>Pareto front</h2>
<div class="plots">
<figure id="pareto-latency">${scatter(measured, report, 'latency', 'latency (ms, p50)', report.callFloorMs)}
<figcaption>Accuracy vs latency of every measured trial (filled: feasible; ringed: Pareto-optimal; star: best; square: baseline).
The dashed line is the runtime's per-call floor at batch 1 (${report.callFloorMs.toFixed(4)} ms, a model that does nothing): at batch 1 small models sit near it, so their gains flatten there.</figcaption></figure>
<figure id="pareto-size">${scatter(measured, report, 'size', 'size (KB)', undefined)}
<figcaption>Accuracy vs file size.</figcaption></figure>
</div>
<table><thead><tr><th>Pareto trial</th><th>accuracy</th><th>latency ms</th><th>size KB</th><th>params</th><th>MACs</th><th>file</th></tr></thead><tbody>
${report.pareto.map((t) => `<tr><td>${t.number}</td>${metricCells(t)}<td>${escapeHtml(t.file ?? '')}</td></tr>`).join('\n')}
</tbody></table>

<h2>Chosen per-layer parameters</h2>
${best === undefined ? '<p>None.</p>' : parameterTable(report, best)}

<h2>Search history</h2>
<figure id="history">${historyPlot(report)}<figcaption>Accuracy of each trial in order (filled: feasible; red: infeasible).</figcaption></figure>
<table><thead><tr><th>trial</th><th>state</th><th>accuracy</th><th>latency ms</th><th>size KB</th><th>params</th><th>MACs</th><th>why infeasible / error</th></tr></thead><tbody>
${report.trials.map((t) => `<tr><td>${t.number}</td><td>${t.state}${t.feasible ? '' : t.state === 'complete' ? ' (infeasible)' : ''}</td>${metricCells(t)}<td class="infeasible">${escapeHtml(t.error ?? t.infeasibleBecause.join('; '))}</td></tr>`).join('\n')}
</tbody></table>
${failed.length === 0 ? '' : `<p class="note">${failed.length} trial(s) failed; the search went on past them.</p>`}
</body>
</html>
`;
}

function beforeAfterTable(report: CompressionReport, best: ReportedTrial): string {
  const before = report.baseline;
  const recovered = report.recovery?.adopted === true;
  const after = recovered ? (report.recovery?.metrics ?? {}) : (best.metrics ?? {});
  const row = (label: string, key: string, format: (v: number) => string, ratioLabel: (b: number, a: number) => string): string => {
    const b = before[key];
    const a = after[key];
    if (b === undefined || a === undefined) return '';
    return `<tr><td>${label}</td><td>${format(b)}</td><td>${format(a)}</td><td>${ratioLabel(b, a)}</td></tr>`;
  };
  const times = (b: number, a: number): string => (a > 0 ? `${(b / a).toFixed(2)}x smaller` : '');
  return `<table id="before-after"><thead><tr><th></th><th>input</th><th>best (trial ${best.number}${recovered ? ', after the final recovery' : ''})</th><th>change</th></tr></thead><tbody>
${row('accuracy', 'accuracy', (v) => `${(v * 100).toFixed(2)} %`, (b, a) => `${((a - b) * 100).toFixed(2)} points`)}
${row(`latency (batch ${report.target.batch})`, 'latency', (v) => `${v.toFixed(3)} ms`, (b, a) => (a > 0 ? `${(b / a).toFixed(2)}x faster` : ''))}
${row('file size', 'size', (v) => `${(v / 1024).toFixed(1)} KB`, times)}
${row('params', 'params', (v) => v.toLocaleString('en-US'), times)}
${row('MACs per sample', 'macs', (v) => v.toLocaleString('en-US'), times)}
</tbody></table>`;
}

function parameterTable(report: CompressionReport, best: ReportedTrial): string {
  const layers = new Map(report.searchSpace.map((p) => [p.name, p.layer]));
  const entries = Object.entries(best.params);
  if (entries.length === 0) return '<p>The passes had nothing to tune.</p>';
  return `<table id="parameters"><thead><tr><th>parameter</th><th>layer</th><th>value</th></tr></thead><tbody>
${entries.map(([name, value]) => `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(layers.get(name) ?? '')}</td><td>${escapeHtml(typeof value === 'number' ? String(Number(value.toPrecision(6))) : String(value))}</td></tr>`).join('\n')}
</tbody></table>`;
}

function metricCells(t: ReportedTrial): string {
  const m = t.metrics;
  if (m === undefined) return '<td></td><td></td><td></td><td></td><td></td>';
  const cell = (v: number | undefined, f: (x: number) => string): string => `<td>${v === undefined ? '' : f(v)}</td>`;
  return (
    cell(m['accuracy'], (v) => `${(v * 100).toFixed(2)} %`) +
    cell(m['latency'], (v) => v.toFixed(3)) +
    cell(m['size'], (v) => (v / 1024).toFixed(1)) +
    cell(m['params'], (v) => v.toLocaleString('en-US')) +
    cell(m['macs'], (v) => v.toLocaleString('en-US'))
  );
}

const width = 520;
const height = 340;
const margin = { left: 62, right: 16, top: 16, bottom: 44 };

function scale(values: readonly number[], from: number, to: number): (v: number) => number {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (!(high > low)) {
    low -= Math.abs(low) * 0.05 + 1e-9;
    high += Math.abs(high) * 0.05 + 1e-9;
  }
  const pad = (high - low) * 0.06;
  low -= pad;
  high += pad;
  return (v) => from + ((v - low) / (high - low)) * (to - from);
}

function ticks(values: readonly number[], count: number): number[] {
  const low = Math.min(...values);
  const high = Math.max(...values);
  if (!(high > low)) return [low];
  return Array.from({ length: count }, (_, i) => low + ((high - low) * i) / (count - 1));
}

/** Enough decimals that neighbouring ticks of `values`' range read differently. */
function tickFormat(values: readonly number[], count: number): (v: number) => string {
  const range = Math.max(...values) - Math.min(...values);
  const step = range / Math.max(1, count - 1);
  const digits = step > 0 ? Math.min(6, Math.max(0, Math.ceil(-Math.log10(step)) + 1)) : 2;
  return (v) => v.toFixed(digits);
}

function axes(xLabel: string, yLabel: string, xTicks: readonly number[], yTicks: readonly number[], x: (v: number) => number, y: (v: number) => number, formatX: (v: number) => string, formatY: (v: number) => string): string {
  const bottom = height - margin.bottom;
  return [
    `<line x1="${margin.left}" y1="${bottom}" x2="${width - margin.right}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${bottom}" stroke="#333"/>`,
    ...xTicks.map((t) => `<text x="${x(t).toFixed(1)}" y="${bottom + 16}" font-size="11" text-anchor="middle">${formatX(t)}</text>`),
    ...yTicks.map((t) => `<text x="${margin.left - 6}" y="${(y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${formatY(t)}</text>`),
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - 8}" font-size="12" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text x="14" y="${(margin.top + bottom) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(margin.top + bottom) / 2})">${escapeHtml(yLabel)}</text>`,
  ].join('');
}

function scatter(trials: readonly ReportedTrial[], report: CompressionReport, metric: 'latency' | 'size', label: string, floor: number | undefined): string {
  const divisor = metric === 'size' ? 1024 : 1;
  const points = trials.map((t) => ({ t, x: (t.metrics?.[metric] ?? 0) / divisor, y: (t.metrics?.['accuracy'] ?? 0) * 100 }));
  const baseX = (report.baseline[metric] ?? 0) / divisor;
  const baseY = (report.baseline['accuracy'] ?? 0) * 100;
  const xs = [...points.map((p) => p.x), baseX, ...(floor === undefined ? [] : [floor])];
  const ys = [...points.map((p) => p.y), baseY];
  const x = scale(xs, margin.left, width - margin.right);
  const y = scale(ys, height - margin.bottom, margin.top);
  const marks = points.map(({ t, x: px, y: py }) => {
    const cx = x(px).toFixed(1);
    const cy = y(py).toFixed(1);
    const title = `<title>trial ${t.number}: ${py.toFixed(2)} %, ${px.toFixed(3)} ${metric === 'size' ? 'KB' : 'ms'}${t.feasible ? '' : ' (infeasible)'}</title>`;
    if (report.best?.number === t.number) {
      return `<path class="point best" d="M${cx} ${(Number(cy) - 8).toFixed(1)} l2.4 5.6 6 .5 -4.6 4 1.4 5.9 -5.2 -3.1 -5.2 3.1 1.4 -5.9 -4.6 -4 6 -.5z" fill="#e8a317" stroke="#6b4a00">${title}</path>`;
    }
    const fill = t.feasible ? '#3465a4' : '#fff';
    const stroke = t.feasible ? '#1f3d66' : '#c33';
    return `<circle class="point" cx="${cx}" cy="${cy}" r="${t.pareto ? 6 : 4}" fill="${fill}" stroke="${stroke}" stroke-width="${t.pareto ? 2.5 : 1.2}">${title}</circle>`;
  });
  const front = points.filter((p) => p.t.pareto).sort((a, b) => a.x - b.x);
  const frontLine = front.length > 1 ? `<polyline points="${front.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}" fill="none" stroke="#3465a4" stroke-dasharray="3 3"/>` : '';
  const floorLine =
    floor === undefined
      ? ''
      : `<line x1="${x(floor).toFixed(1)}" y1="${margin.top}" x2="${x(floor).toFixed(1)}" y2="${height - margin.bottom}" stroke="#888" stroke-dasharray="6 4"/>` +
        `<text x="${(x(floor) + 4).toFixed(1)}" y="${margin.top + 12}" font-size="11" fill="#555">per-call floor (batch 1)</text>`;
  const baseMark = `<rect class="point baseline" x="${(x(baseX) - 5).toFixed(1)}" y="${(y(baseY) - 5).toFixed(1)}" width="10" height="10" fill="#2e7d32"><title>input model: ${baseY.toFixed(2)} %, ${baseX.toFixed(3)}</title></rect>`;
  return `<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="accuracy vs ${metric}">` +
    axes(label, 'accuracy (%)', ticks(xs, 5), ticks(ys, 5), x, y, tickFormat(xs, 5), tickFormat(ys, 5)) +
    floorLine + frontLine + baseMark + marks.join('') + '</svg>';
}

function historyPlot(report: CompressionReport): string {
  const points = report.trials.filter((t) => t.metrics?.['accuracy'] !== undefined).map((t) => ({ t, x: t.number, y: (t.metrics?.['accuracy'] ?? 0) * 100 }));
  const baseY = (report.baseline['accuracy'] ?? 0) * 100;
  const xs = [0, ...points.map((p) => p.x)];
  const ys = [baseY, ...points.map((p) => p.y)];
  const x = scale(xs, margin.left, width - margin.right);
  const y = scale(ys, height - margin.bottom, margin.top);
  const marks = points.map(
    ({ t, x: px, y: py }) =>
      `<circle class="point" cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="4" fill="${t.feasible ? '#3465a4' : '#fff'}" stroke="${t.feasible ? '#1f3d66' : '#c33'}"><title>trial ${t.number}: ${py.toFixed(2)} %</title></circle>`,
  );
  const baseLine = `<line x1="${margin.left}" y1="${y(baseY).toFixed(1)}" x2="${width - margin.right}" y2="${y(baseY).toFixed(1)}" stroke="#2e7d32" stroke-dasharray="4 3"/>`;
  return `<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="search history">` +
    axes('trial', 'accuracy (%)', [...new Set(ticks(xs, 6).map(Math.round))], ticks(ys, 5), x, y, (v) => v.toFixed(0), tickFormat(ys, 5)) +
    baseLine + marks.join('') + '</svg>';
}

function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}
