import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { PassToken } from '../plugin/coreTokens.js';
import { definePlugin } from '../plugin/definePlugin.js';
import { ConfigError } from '../errors/errors.js';
import { parseConfigText } from './loadConfig.js';
import { validatePluginOptions } from './validatePluginOptions.js';

const distillerPlugin = definePlugin({
  name: '@open-autoglm/distiller-kd',
  version: '0.1.0',
  provides: [PassToken],
  configSchema: z.strictObject({
    epochs: z.int().positive().default(1),
    temperature: z.union([z.number().positive(), z.array(z.number().positive()).min(1)]).default(4),
    alpha: z.number().min(0).max(1).default(0.7),
    loss: z.enum(['kl', 'mse']).default('kl'),
    schedule: z
      .discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('constant') }),
        z.strictObject({ kind: z.literal('cosine'), warmup: z.int().nonnegative() }),
      ])
      .optional(),
  }),
  register: () => {},
});

function messageOf(options: unknown): string {
  try {
    validatePluginOptions(distillerPlugin, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('validatePluginOptions', () => {
  it('should return the parsed options with defaults', () => {
    expect(validatePluginOptions(distillerPlugin, { temperature: [2, 4] })).toEqual({
      epochs: 1,
      temperature: [2, 4],
      alpha: 0.7,
      loss: 'kl',
    });
  });

  it('should name the plugin and say what each key expected and got', () => {
    expect(messageOf({ epochs: 1.5, alpha: -1, loss: 'kll' })).toBe(
      'Invalid options for plugin @open-autoglm/distiller-kd:\n' +
        '  epochs: expected an integer, got 1.5\n' +
        '  alpha: expected a number >= 0, got -1\n' +
        '  loss: expected one of "kl", "mse", got "kll" (did you mean "kl"?)\n' +
        "Fix these options; the plugin's README lists what it accepts.",
    );
  });

  it('should explain a value that matches no alternative of a union', () => {
    expect(messageOf({ temperature: 'hot' })).toContain('temperature: expected a number or a list, got "hot"');
    // A list has the right shape, so the problem inside it is reported.
    expect(messageOf({ temperature: [2, -1] })).toContain('temperature[1]: expected a number > 0, got -1');
    // A mapping where objects are allowed: the unknown key is reported, not "no alternative matched".
    const strategy = z.union([z.literal('auto'), z.strictObject({ sampler: z.enum(['tpe', 'random']) })]);
    const plugin = definePlugin({ ...distillerPlugin, configSchema: z.strictObject({ strategy }), register: () => {} });
    expect(() => validatePluginOptions(plugin, { strategy: { sampler: 'tpe', seed: 1 } })).toThrow(
      'strategy.seed: unknown key "seed"; allowed keys: sampler',
    );
    expect(() => validatePluginOptions(plugin, { strategy: 3 })).toThrow('strategy: expected "auto" or a mapping (key: value), got 3');
  });

  it('should name the allowed tags of a tagged union', () => {
    expect(messageOf({ schedule: { kind: 'linear' } })).toContain('schedule.kind: expected one of "constant", "cosine", got "linear"');
    expect(messageOf({ schedule: { kind: 'cosine' } })).toContain('schedule.warmup: missing (expected an integer)');
    expect(messageOf({ schedule: { kind: 'cosine', warmup: 0, steps: 3 } })).toContain(
      'schedule.steps: unknown key "steps"; allowed keys: kind, warmup',
    );
  });

  it('should say the options must be a mapping', () => {
    expect(messageOf([1, 2])).toContain('(top level): expected a mapping (key: value), got a list of 2 items');
  });

  it('should give the file, the block and the line of each problem when the location is known', () => {
    const loaded = parseConfigText(
      [
        'model: m.onnx',
        'data: { val: { x: v.npy } }',
        'objectives: [{ metric: accuracy }]',
        'search: { use: search-bayes }',
        'passes:',
        '  - use: distiller-kd',
        '    with:',
        '      epochs: 0',
        '      temprature: 2',
      ].join('\n'),
      '/home/me/autoglm.yaml',
    );
    let caught: unknown;
    try {
      validatePluginOptions(distillerPlugin, loaded.config.passes[0]?.with, loaded.locationOf(['passes', 0, 'with']));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).file).toBe('/home/me/autoglm.yaml');
    expect((caught as ConfigError).message).toBe(
      'Invalid options for plugin @open-autoglm/distiller-kd (passes[0].with in /home/me/autoglm.yaml):\n' +
        '  line 8, column 15: passes[0].with.epochs: expected an integer > 0, got 0\n' +
        '  line 9, column 7: passes[0].with.temprature: unknown key "temprature" (did you mean "temperature"?); ' +
        'allowed keys: epochs, temperature, alpha, loss, schedule\n' +
        "Fix these options; the plugin's README lists what it accepts.",
    );
  });
});
