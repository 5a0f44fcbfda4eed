import { describe, expect, it } from 'vitest';
import { ConfigError, PluginError, type CommandInvocation, type PluginCommand } from '@open-autoglm/core';
import { commandFromPlugin, loadPluginCommand, pluginCommandEntries } from './pluginCommands.js';
import { runCli } from './runCli.js';

function capture(): { io: { stdout: (t: string) => void; stderr: (t: string) => void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { stdout: (t) => (out += t), stderr: (t) => (err += t) }, out: () => out, err: () => err };
}

/** A command that echoes what it was given, as a plugin would declare it. */
function echoCommand(calls: CommandInvocation[]): PluginCommand {
  return {
    name: 'echo',
    summary: 'echo the invocation',
    arguments: [
      { name: 'model', description: 'the model' },
      { name: 'extra', description: 'more words', required: false, variadic: true },
    ],
    options: [
      { flags: '--out <file>', description: 'where to write', required: true },
      { flags: '--method <name>', description: 'method', defaultValue: 'minmax' },
      { flags: '--per-tensor', description: 'a switch' },
      { flags: '--exclude <names...>', description: 'a list' },
    ],
    async run(invocation) {
      calls.push(invocation);
      invocation.logger.info('working');
      if (invocation.options['method'] === 'bad') throw new ConfigError('--method bad is not a method; use minmax.');
      return { summary: `quantized ${invocation.args.join(' ')}`, data: { args: [...invocation.args], method: invocation.options['method'] ?? null } };
    },
  };
}

describe('commandFromPlugin', () => {
  it('should parse arguments and options as the plugin declares them and print the summary', async () => {
    const calls: CommandInvocation[] = [];
    const { io, out, err } = capture();
    await commandFromPlugin(io, echoCommand(calls)).parseAsync(['m.onnx', 'a', 'b', '--out', 'q.onnx', '--per-tensor', '--exclude', 'Conv', 'fc1'], { from: 'user' });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args).toEqual(['m.onnx', 'a', 'b']);
    expect(calls[0]?.options).toEqual({ out: 'q.onnx', method: 'minmax', perTensor: true, exclude: ['Conv', 'fc1'] });
    expect(calls[0]?.cwd).toBe(process.cwd());
    expect(out()).toBe('quantized m.onnx a b\n');
    expect(err()).toBe('working\n');
  });

  it('should print the data as one JSON document with --json', async () => {
    const { io, out } = capture();
    await commandFromPlugin(io, echoCommand([])).parseAsync(['m.onnx', '--out', 'q.onnx', '--json'], { from: 'user' });
    expect(JSON.parse(out())).toEqual({ args: ['m.onnx'], method: 'minmax' });
  });

  it('should refuse a missing required option before running', async () => {
    const calls: CommandInvocation[] = [];
    const { io, err } = capture();
    await expect(commandFromPlugin(io, echoCommand(calls)).parseAsync(['m.onnx'], { from: 'user' })).rejects.toThrow(/--out <file>/);
    expect(calls).toHaveLength(0);
    expect(err()).toContain("required option '--out <file>' not specified");
  });
});

describe('plugin commands through runCli', () => {
  it('should list the plugin commands in the help without loading the plugins', async () => {
    const { io, out } = capture();
    expect(await runCli(['--help'], io)).toBe(0);
    for (const [name, entry] of Object.entries(pluginCommandEntries)) {
      expect(out()).toContain(name);
      expect(out()).toContain(`@open-autoglm/${entry.plugin}`);
    }
  });

  it('should say so when a plugin provides no command', async () => {
    await expect(loadPluginCommand(capture().io, 'search-bayes', 'tune')).rejects.toThrow(PluginError);
    await expect(loadPluginCommand(capture().io, 'search-bayes', 'tune')).rejects.toThrow(/provides no CLI command.*autoglm tune/);
  });

  it('should print the install command when the plugin of a command is not installed', async () => {
    await expect(loadPluginCommand(capture().io, '@open-autoglm/not-a-plugin', 'nothing')).rejects.toThrow(/npm install @open-autoglm\/not-a-plugin/);
  });
});
