import { Command } from 'commander';
import { container } from 'tsyringe';
import { assemblePlugins, loadConfig } from '@open-autoglm/core';
import { OnnxModel, summarizeModel } from '@open-autoglm/onnx';
import { loadDataset } from '@open-autoglm/runtime';
import { type CliIo, formatCount, printJson } from '../cliIo.js';

/**
 * Checks a config the way a run would start: the YAML against the schema, the model and every
 * dataset split readable and consistent, every plugin installed, its options valid and its
 * register() honest. Reads everything, writes nothing.
 */
export function validateCommand(io: CliIo): Command {
  return new Command('validate')
    .description('check an autoglm.yaml: schema, model, data files and plugins (writes nothing)')
    .argument('<config>', 'the YAML config file')
    .option('--json', 'print one JSON document')
    .action(async (configPath: string, options: { json?: boolean }) => {
      const loaded = await loadConfig(configPath);
      const { config } = loaded;
      const model = await OnnxModel.load(config.model);
      const summary = summarizeModel(model);
      const splits: Record<string, { samples: number; labelled: boolean }> = {};
      for (const [split, source] of Object.entries(config.data)) {
        if (source === undefined) continue;
        const dataset = await loadDataset(source.y === undefined ? { x: source.x } : { x: source.x, y: source.y });
        splits[split] = { samples: dataset.size, labelled: source.y !== undefined };
      }
      const plugins = await assemblePlugins(loaded, container.createChildContainer());
      const result = {
        config: loaded.file,
        model: { path: config.model, params: summary.params, macs: summary.macs },
        data: splits,
        search: `${plugins.search.plugin.name}@${plugins.search.plugin.version}`,
        passes: plugins.passes.map((p) => `${p.plugin.name}@${p.plugin.version}`),
        output: config.output,
      };
      if (options.json === true) {
        printJson(io, { valid: true, ...result });
        return;
      }
      io.stdout(
        `${loaded.file} is valid.\n` +
          `model    ${config.model} (${formatCount(summary.params)} params, ${formatCount(summary.macs)} MACs per sample)\n` +
          Object.entries(splits)
            .map(([name, s]) => `${name.padEnd(8)} ${s.samples} samples${s.labelled ? ' with labels' : ''}\n`)
            .join('') +
          `search   ${result.search}\npasses   ${result.passes.join(' -> ')}\n`,
      );
    });
}
