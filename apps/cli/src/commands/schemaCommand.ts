import { Command } from 'commander';
import { configJsonSchema } from '@open-autoglm/core';
import { type CliIo, printJson } from '../cliIo.js';

export function schemaCommand(io: CliIo): Command {
  return new Command('schema')
    .description('print the JSON Schema of the YAML config (for editors: yaml-language-server, VS Code)')
    .action(() => {
      printJson(io, configJsonSchema());
    });
}
