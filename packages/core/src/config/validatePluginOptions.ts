import { ConfigError } from '../errors/errors.js';
import type { Plugin } from '../plugin/definePlugin.js';
import { formatKeyPath, type ConfigLocation } from './ConfigLocation.js';
import { describeExpectation, formatValidationIssues } from './formatValidationIssues.js';

/**
 * Validates a plugin's options (a `with:` block) with the plugin's own schema and returns them
 * parsed (defaults applied). Throws one `ConfigError` naming the plugin, the file, the line and
 * key path of every problem.
 */
export function validatePluginOptions<TOptions>(plugin: Plugin<TOptions>, options: unknown, location?: ConfigLocation): TOptions {
  const result = plugin.configSchema.safeParse(options, { error: describeExpectation });
  if (result.success) return result.data;
  const keyPath = location?.keyPath ?? [];
  const lines = formatValidationIssues(result.error.issues, {
    schema: plugin.configSchema,
    value: options,
    keyPath,
    ...(location?.locate === undefined ? {} : { locate: location.locate }),
  });
  const where =
    location?.file === undefined
      ? keyPath.length === 0
        ? ''
        : ` (${formatKeyPath(keyPath)})`
      : ` (${keyPath.length === 0 ? '' : `${formatKeyPath(keyPath)} in `}${location.file})`;
  throw new ConfigError(
    `Invalid options for plugin ${plugin.name}${where}:\n${lines.map((line) => `  ${line}`).join('\n')}\n` +
      `Fix these options; the plugin's README lists what it accepts.`,
    location?.file === undefined ? {} : { file: location.file },
  );
}
