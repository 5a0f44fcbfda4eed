import { Command } from 'commander';
import { type ModelSummary, OnnxModel, formatDims, summarizeModel } from '@open-autoglm/onnx';
import { type CliIo, formatCount, formatTable, printJson } from '../cliIo.js';

export function inspectCommand(io: CliIo): Command {
  return new Command('inspect')
    .description('parameters, MACs per sample, opset, operators, inputs and outputs of a model')
    .argument('<model>', 'the .onnx model file')
    .option('--layers', 'add one row per node: op, output shape, params, MACs')
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, options: { layers?: boolean; json?: boolean }) => {
      const model = await OnnxModel.load(modelPath);
      const summary = summarizeModel(model, { layers: options.layers === true });
      if (options.json === true) printJson(io, { model: modelPath, ...summary });
      else io.stdout(formatSummary(modelPath, summary));
    });
}

function formatSummary(modelPath: string, s: ModelSummary): string {
  const signature = (t: ModelSummary['inputs'][number]): string => `${t.name}  ${t.dtype}${formatDims(t.shape ?? undefined)}`;
  const lines = [
    `model      ${modelPath}`,
    `producer   ${s.producer || '(not recorded)'}, IR ${s.irVersion}, opset ${s.opset ?? '(none)'}`,
    `params     ${formatCount(s.params)}`,
    `MACs       ${formatCount(s.macs)} per sample${s.uncounted.length > 0 ? ` (${s.uncounted.length} nodes not counted: a dim is unknown)` : ''}`,
    `nodes      ${s.nodes}: ${Object.entries(s.ops).map(([op, n]) => `${op} ${n}`).join(', ')}`,
    ...s.inputs.map((t, i) => `${i === 0 ? 'inputs ' : '       '}    ${signature(t)}`),
    ...s.outputs.map((t, i) => `${i === 0 ? 'outputs' : '       '}    ${signature(t)}`),
  ];
  let text = `${lines.join('\n')}\n`;
  if (s.layers !== undefined) {
    text += `\n${formatTable(
      ['node', 'op', 'output shape', 'params', 'MACs'],
      s.layers.map((l) => [l.name, l.opType, formatDims(l.outputShape ?? undefined), l.params, l.macs ?? '?']),
    )}`;
  }
  return text;
}
