import { describe, it } from 'vitest';
import type { Plugin } from '../plugin/definePlugin.js';
import { pluginConformanceChecks, type PluginConformanceOptions } from './pluginConformanceChecks.js';

/**
 * Adds the plugin-contract tests to the calling test file, as one `it` per check inside a
 * `describe('plugin conformance')`:
 *
 * ```ts
 * describe('quantizer-int8 plugin', () => {
 *   runPluginConformance(plugin, { packageJsonPath: new URL('../package.json', import.meta.url), validConfig: { perChannel: true } });
 * });
 * ```
 */
export function runPluginConformance(plugin: Plugin, options: PluginConformanceOptions): void {
  describe('plugin conformance', () => {
    for (const check of pluginConformanceChecks) {
      it(`should ${check.title}`, () => check.run(plugin, options));
    }
  });
}
