import { Command } from 'commander';
import { container } from 'tsyringe';
import {
  CommandToken,
  LoggerToken,
  PluginError,
  PluginRegistry,
  firstPartyPluginPackages,
  loadPlugin,
  registerValue,
  type CommandOptionValues,
  type LogFields,
  type Logger,
  type PluginCommand,
} from '@open-autoglm/core';
import { type CliIo, printJson } from './cliIo.js';

/** A subcommand that a first-party plugin contributes, and the plugin that has it. */
export interface PluginCommandEntry {
  /** The plugin's short name (`quantizer-int8`), as a config's `use:` would name it. */
  readonly plugin: string;
  /** One line for `autoglm --help`, before the plugin is loaded. */
  readonly summary: string;
}

/**
 * Commands whose code lives in plugins: the CLI knows their names, so that `autoglm --help` lists
 * them, but imports a plugin only when its command runs (the CLI depends on core, not on plugins).
 */
export const pluginCommandEntries: Readonly<Record<string, PluginCommandEntry>> = Object.freeze({
  prune: { plugin: 'pruner-structured', summary: 'structured pruning of channels, heads and neurons' },
  quantize: { plugin: 'quantizer-int8', summary: 'INT8 quantization: static (QDQ, calibrated), dynamic, mixed precision' },
  distill: { plugin: 'distiller-kd', summary: 'recover a compressed model by knowledge distillation from its original' },
});

/**
 * The command as `autoglm --help` lists it. Running it loads the plugin, builds the real command
 * from the plugin's description and hands it every word after the command name (options
 * included, `--help` too), so help and errors come from the real command.
 */
export function lazyPluginCommand(io: CliIo, name: string, entry: PluginCommandEntry): Command {
  const packageName = firstPartyPluginPackages[entry.plugin] ?? entry.plugin;
  return new Command(name)
    .description(`${entry.summary} (plugin ${packageName})`)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (_options: unknown, self: Command) => {
      const real = commandFromPlugin(io, await loadPluginCommand(io, entry.plugin, name));
      await real.parseAsync(self.args, { from: 'user' });
    });
}

/** Loads `plugin` with default options and returns the command it provides under `CommandToken`. */
export async function loadPluginCommand(io: CliIo, plugin: string, commandName: string): Promise<PluginCommand> {
  const loaded = await loadPlugin(plugin, { configDir: process.cwd() });
  if (!loaded.provides.some((token) => token.id === CommandToken.id)) {
    throw new PluginError(
      `Plugin ${loaded.name}@${loaded.version} provides no CLI command (it does not list CommandToken in "provides"), ` +
        `so "autoglm ${commandName}" cannot run; update the plugin to a version that has the command.`,
    );
  }
  const root = container.createChildContainer();
  registerValue(root, LoggerToken, stderrLogger(io.stderr, false));
  const registry = new PluginRegistry(root);
  registry.add(loaded, {});
  return registry.resolve(loaded, CommandToken);
}

/** Builds the commander command a plugin's description asks for; its action calls `run`. */
export function commandFromPlugin(io: CliIo, spec: PluginCommand): Command {
  const command = new Command(spec.name).description(spec.summary);
  for (const argument of spec.arguments) {
    const word = `${argument.name}${argument.variadic === true ? '...' : ''}`;
    command.argument(argument.required === false ? `[${word}]` : `<${word}>`, argument.description);
  }
  for (const option of spec.options) {
    const defaultValue = Array.isArray(option.defaultValue) ? [...(option.defaultValue as readonly string[])] : option.defaultValue;
    if (option.required === true) command.requiredOption(option.flags, option.description, defaultValue as string | boolean | string[] | undefined);
    else command.option(option.flags, option.description, defaultValue as string | boolean | string[] | undefined);
  }
  command
    .option('--json', 'print one JSON document')
    .option('--verbose', 'on error, print the stack and the chain of causes; log debug lines')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (...actionArgs: unknown[]) => {
      const self = actionArgs[actionArgs.length - 1] as Command;
      const { json, verbose, ...options } = self.opts<Record<string, string | boolean | string[] | undefined>>();
      const args = self.processedArgs.flatMap((value: unknown) => (Array.isArray(value) ? (value as string[]) : value === undefined ? [] : [String(value)]));
      const result = await spec.run({
        args,
        options: options as CommandOptionValues,
        cwd: process.cwd(),
        logger: stderrLogger(io.stderr, verbose === true),
      });
      if (json === true) printJson(io, result.data);
      else io.stdout(result.summary.endsWith('\n') ? result.summary : `${result.summary}\n`);
    });
  return command;
}

/** Progress lines on stderr, so that stdout stays the command's result (one JSON document). */
export function stderrLogger(write: CliIo['stderr'], verbose: boolean): Logger {
  const line = (level: string, message: string, fields?: LogFields): void => {
    const extra = fields === undefined || Object.keys(fields).length === 0 ? '' : ` ${JSON.stringify(fields)}`;
    write(`${level}${message}${extra}\n`);
  };
  return {
    debug: (message, fields) => {
      if (verbose) line('debug: ', message, fields);
    },
    info: (message, fields) => line('', message, fields),
    warn: (message, fields) => line('warning: ', message, fields),
    error: (message, fields) => line('error: ', message, fields),
  };
}
