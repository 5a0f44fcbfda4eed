import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, FileAccessError } from '../errors/errors.js';
import { loadConfig, parseConfigText, validateConfig } from './loadConfig.js';

/** The example of /work/shared/notes/architecture.md, verbatim. */
const architectureExample = `model: ./models/resnet8.onnx
data:
  train: { x: ./data/train.x.npy, y: ./data/train.y.npy }
  calib: { x: ./data/calib.x.npy }
  val:   { x: ./data/val.x.npy, y: ./data/val.y.npy }
target: { device: cpu, threads: 1, batch: 1 }
objectives:
  - { metric: accuracy, maximize: true, maxDrop: 0.01 }
  - { metric: latency }
  - { metric: size }
search: { use: search-bayes, with: { sampler: tpe, trials: 40, seed: 0 } }
passes:
  - { use: pruner-structured, with: { criterion: l1, ratio: { min: 0, max: 0.7, step: 0.05 }, perLayer: true } }
  - { use: distiller-kd, with: { epochs: 1, temperature: [2, 4], alpha: 0.7 } }
  - { use: quantizer-int8, with: { calibration: [minmax, percentile, entropy], perChannel: true } }
output: ./out
`;

const configFile = '/work/project/autoglm.yaml';

/** The message of the ConfigError `text` raises. */
function configErrorOf(text: string): string {
  try {
    parseConfigText(text, configFile);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).file).toBe(configFile);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'autoglm-config-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('should load the architecture example with paths resolved from the config folder', async () => {
    const file = path.join(directory, 'autoglm.yaml');
    await writeFile(file, architectureExample);
    const { config, file: loadedFrom } = await loadConfig(file);
    expect(loadedFrom).toBe(file);
    expect(config.model).toBe(path.join(directory, 'models/resnet8.onnx'));
    expect(config.data).toEqual({
      train: { x: path.join(directory, 'data/train.x.npy'), y: path.join(directory, 'data/train.y.npy') },
      calib: { x: path.join(directory, 'data/calib.x.npy') },
      val: { x: path.join(directory, 'data/val.x.npy'), y: path.join(directory, 'data/val.y.npy') },
    });
    expect(config.target).toEqual({ device: 'cpu', threads: 1, batch: 1, optimizationLevel: 'all', warmupRuns: 5, runs: 50 });
    expect(config.objectives).toEqual([
      { metric: 'accuracy', maximize: true, maxDrop: 0.01 },
      { metric: 'latency', maximize: false },
      { metric: 'size', maximize: false },
    ]);
    expect(config.search).toEqual({ use: 'search-bayes', with: { sampler: 'tpe', trials: 40, seed: 0 } });
    expect(config.passes.map((pass) => pass.use)).toEqual(['pruner-structured', 'distiller-kd', 'quantizer-int8']);
    expect(config.passes[0]?.with).toEqual({ criterion: 'l1', ratio: { min: 0, max: 0.7, step: 0.05 }, perLayer: true });
    expect(config.output).toBe(path.join(directory, 'out'));
  });

  it('should fill defaults and accept one input file per model input', () => {
    const { config } = parseConfigText(
      [
        'model: /models/bert.onnx',
        'data:',
        '  val: { x: { input_ids: ids.npy, attention_mask: /data/mask.npy }, y: labels.npy }',
        'objectives: [{ metric: f1, maximize: true }]',
        'search: { use: search-bayes }',
        'passes: [{ use: ./plugins/mine.js }]',
      ].join('\n'),
      configFile,
    );
    expect(config.model).toBe('/models/bert.onnx');
    expect(config.data.val).toEqual({
      x: { input_ids: '/work/project/ids.npy', attention_mask: '/data/mask.npy' },
      y: '/work/project/labels.npy',
    });
    expect(config.target.device).toBe('cpu');
    expect(config.search.with).toEqual({});
    expect(config.passes[0]).toEqual({ use: './plugins/mine.js', with: {} });
    expect(config.output).toBe('/work/project/autoglm-out');
  });

  it('should report a missing file as a FileAccessError naming it', async () => {
    const missing = path.join(directory, 'nope.yaml');
    await expect(loadConfig(missing)).rejects.toThrow(FileAccessError);
    await expect(loadConfig(missing)).rejects.toThrow(`Cannot read the config file ${missing}: the file does not exist.`);
    await expect(loadConfig(directory)).rejects.toThrow(/it is a folder, not a file/);
  });

  it('should report a wrong type with file, line, column, key path, expectation and value', () => {
    const message = configErrorOf(architectureExample.replace('threads: 1', 'threads: two'));
    expect(message).toBe(
      `Invalid config file ${configFile}:\n` +
        '  line 6, column 33: target.threads: expected a positive integer, got "two"\n' +
        'Fix the keys above; the JSON Schema of the config (`autoglm schema`) lists every key and value allowed.',
    );
  });

  it('should report an unknown key with the closest allowed key and the allowed keys', () => {
    const message = configErrorOf(architectureExample.replace('output: ./out', 'ouptut: ./out'));
    expect(message).toContain(
      'line 16, column 1: ouptut: unknown key "ouptut" (did you mean "output"?); allowed keys: model, data, target, objectives, search, passes, output',
    );
    const nested = configErrorOf(architectureExample.replace('threads: 1', 'thread: 1'));
    expect(nested).toContain('line 6, column 24: target.thread: unknown key "thread" (did you mean "threads"?); ' +
        'allowed keys: device, threads, batch, optimizationLevel, warmupRuns, runs');
  });

  it('should report a bad pass entry by its index', () => {
    const message = configErrorOf(architectureExample.replace('{ use: distiller-kd, with:', '{ uses: distiller-kd, with:'));
    expect(message).toContain('line 14, column 7: passes[1].uses: unknown key "uses" (did you mean "use"?); allowed keys: use, with');
    expect(message).toContain('line 14, column 5: passes[1].use: missing (expected a plugin name or path)');
  });

  it('should list every problem, in file order', () => {
    const message = configErrorOf(
      ['model: 3', 'data: { val: ./val.npy }', 'target: { device: gpu }', 'objectives: []', 'search: { use: "" }', 'passes: [{ use: q, with: 1 }]'].join(
        '\n',
      ),
    );
    expect(message.split('\n').slice(1, -1)).toEqual([
      '  line 1, column 8: model: expected a path to an .onnx model, got 3',
      '  line 2, column 14: data.val: expected a mapping (key: value), got "./val.npy"',
      '  line 3, column 19: target.device: expected one of "cpu", "cuda", "tensorrt", "dml", "coreml", "webgpu", got "gpu" (did you mean "cpu"?)',
      '  line 4, column 13: objectives: expected at least one objective (for example { metric: accuracy, maxDrop: 0.01 }), got a list of 0 items',
      '  line 5, column 16: search.use: expected a plugin name or path, got ""',
      '  line 6, column 26: passes[0].with: expected a mapping of plugin options, got 1',
    ]);
  });

  it('should report missing required sections at the top level', () => {
    const message = configErrorOf('model: m.onnx\n');
    expect(message).toContain('line 1, column 1: data: missing (expected a mapping (key: value))');
    expect(message).toContain('search: missing');
    expect(message).toContain('passes: missing');
  });

  it('should check objectives: known metrics, maxDrop only when maximized, no repeats', () => {
    const typo = configErrorOf(architectureExample.replace('metric: latency', 'metric: latncy'));
    expect(typo).toContain('line 9, column 15: objectives[1].metric: unknown metric "latncy" (did you mean "latency"?); set "maximize" for a custom metric');
    const maxDrop = configErrorOf(architectureExample.replace('{ metric: size }', '{ metric: size, maxDrop: 0.1 }'));
    expect(maxDrop).toContain('objectives[2].maxDrop: maxDrop bounds a maximized metric; "size" is minimized: use limit instead');
    const repeated = configErrorOf(architectureExample.replace('{ metric: size }', '{ metric: latency }'));
    expect(repeated).toContain('line 10, column 15: objectives[2].metric: "latency" is listed twice; list each metric once');
  });

  it('should report YAML syntax errors with file, line and the offending text', () => {
    const message = configErrorOf(architectureExample.replace('perChannel: true } }', 'perChannel: true }'));
    // yaml notices the missing brace where the next line starts.
    expect(message).toContain(`The config file ${configFile} is not valid YAML: line 16, column 1: Flow map in block collection`);
    expect(message).toContain('\noutput: ./out\n^\n');
    expect(message).toContain('Fix the YAML syntax at that line.');
    expect(configErrorOf('model: a\nmodel: b\n')).toMatch(/not valid YAML: line 2, column 1: Map keys must be unique/);
  });

  it('should say when the file is empty or not a mapping', () => {
    expect(configErrorOf('# nothing yet\n')).toBe(
      `The config file ${configFile} is empty: it needs at least model, data, objectives, search and passes (\`autoglm schema\` prints the JSON Schema of the config).`,
    );
    expect(configErrorOf('- model: m.onnx\n')).toContain('line 1, column 1: (top level): expected a mapping (key: value), got a list of 1 item');
  });

  it('should validate a config built in code, without positions', () => {
    expect(() => validateConfig({ model: 'm.onnx', data: { val: { x: 1 } } }, { baseDir: '/base' })).toThrow(
      /^The config is invalid:\n {2}data\.val\.x: expected a path to the inputs \(\.npy\) or a mapping \(key: value\), got 1\n/,
    );
    const config = validateConfig(
      { model: 'm.onnx', data: { val: { x: 'v.npy' } }, objectives: [{ metric: 'accuracy' }], search: { use: 's' }, passes: [{ use: 'p' }] },
      { baseDir: '/base' },
    );
    expect(config.model).toBe('/base/m.onnx');
    expect(config.objectives).toEqual([{ metric: 'accuracy', maximize: true }]);
  });
});
