import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { type DiscoveredPlugin, discoverInstalledPlugins, type PluginDiscoveryFailure } from '@open-autoglm/core';
import { type CliIo, formatTable, printJson } from '../cliIo.js';

export function pluginsCommand(io: CliIo): Command {
  return new Command('plugins')
    .description('the installed Open-AutoGLM plugins and what each provides')
    .option('--json', 'print one JSON document')
    .action(async (options: { json?: boolean }) => {
      // Plugins are found next to the project (the current folder and its parents) and next to
      // this CLI (a global install keeps its plugins beside it).
      const cliDir = path.dirname(fileURLToPath(import.meta.url));
      const plugins = new Map<string, DiscoveredPlugin>();
      const failures = new Map<string, PluginDiscoveryFailure>();
      for (const from of [process.cwd(), cliDir]) {
        const found = await discoverInstalledPlugins(from);
        for (const p of found.plugins) if (!plugins.has(p.packageName)) plugins.set(p.packageName, p);
        for (const f of found.failures) if (!failures.has(f.packageName)) failures.set(f.packageName, f);
      }
      const rows = [...plugins.values()].map((p) => ({
        name: p.plugin.name,
        version: p.plugin.version,
        description: p.plugin.description ?? '',
        provides: p.plugin.provides.map((t) => t.id),
        package: p.directory,
      }));
      const broken = [...failures.values()].map((f) => ({ package: f.packageName, directory: f.directory, error: f.error.message }));
      if (options.json === true) {
        printJson(io, { plugins: rows, failures: broken });
        return;
      }
      if (rows.length === 0) io.stdout('No Open-AutoGLM plugins are installed here. Install one, e.g. npm install @open-autoglm/quantizer-int8.\n');
      else io.stdout(formatTable(['plugin', 'version', 'provides', 'description'], rows.map((r) => [r.name, r.version, r.provides.join(', '), r.description])));
      for (const f of broken) io.stderr(`warning: ${f.package} declares itself a plugin but cannot be loaded: ${f.error}\n`);
    });
}
