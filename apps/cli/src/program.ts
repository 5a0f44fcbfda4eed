import { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { benchCommand } from './commands/bench.js';
import { evalCommand } from './commands/eval.js';
import { inspectCommand } from './commands/inspect.js';
import { pluginsCommand } from './commands/plugins.js';
import { schemaCommand } from './commands/schema.js';
import { validateCommand } from './commands/validate.js';
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
  for (const make of [inspectCommand, evalCommand, benchCommand, validateCommand, pluginsCommand, schemaCommand]) {
    // Subcommands inherit the output routing and throw instead of exiting, like the root.
    const command = make(io).exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    command.option('--verbose', 'on error, print the stack and the chain of causes');
    program.addCommand(command);
  }
  return program;
}
