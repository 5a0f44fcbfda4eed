import { Command } from 'commander';
import type { CliIo } from './cliIo.js';
import { benchCommand } from './commands/benchCommand.js';
import { compressCommand } from './commands/compressCommand.js';
import { evalCommand } from './commands/evalCommand.js';
import { initCommand } from './commands/initCommand.js';
import { inspectCommand } from './commands/inspectCommand.js';
import { pluginsCommand } from './commands/pluginsCommand.js';
import { schemaCommand } from './commands/schemaCommand.js';
import { trainCommand } from './commands/trainCommand.js';
import { validateCommand } from './commands/validateCommand.js';
import { lazyPluginCommand, pluginCommandEntries } from './pluginCommands.js';
import { cliVersion } from './version.js';

/** The `autoglm` command tree. Commands are thin: each calls one function of a package. */
export function createProgram(io: CliIo): Command {
  const program = new Command('autoglm')
    .description('Automated compression of ONNX models: inspect, evaluate, benchmark, validate configs')
    .version(cliVersion(), '-V, --version')
    .option('--verbose', 'on error, print the stack and the chain of causes')
    .showHelpAfterError('(run autoglm --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  for (const make of [inspectCommand, evalCommand, benchCommand, validateCommand, pluginsCommand, schemaCommand, trainCommand, compressCommand, initCommand]) {
    // Subcommands inherit the output routing and throw instead of exiting, like the root.
    const command = make(io).exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    command.option('--verbose', 'on error, print the stack and the chain of causes');
    program.addCommand(command);
  }
  for (const [name, entry] of Object.entries(pluginCommandEntries)) {
    // Every word after the name, --verbose and --help included, goes to the plugin's own command.
    program.addCommand(lazyPluginCommand(io, name, entry).exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr }));
  }
  return program;
}
