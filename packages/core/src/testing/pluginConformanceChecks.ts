import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { validatePluginOptions } from '../config/validatePluginOptions.js';
import { silentLogger } from '../contracts/Logger.js';
import { PluginError } from '../errors/errors.js';
import { LoggerToken } from '../plugin/coreTokens.js';
import { isPlugin, type Plugin } from '../plugin/definePlugin.js';
import { PluginRegistry } from '../plugin/PluginRegistry.js';
import { registerValue } from '../plugin/tokenBindings.js';

export interface PluginConformanceOptions {
  /** The plugin package's package.json (a path or a file URL, such as `new URL('../package.json', import.meta.url)`). */
  readonly packageJsonPath: string | URL;
  /** Options the plugin accepts: a realistic `with:` block. */
  readonly validConfig: Readonly<Record<string, unknown>>;
  /**
   * Binds what the plugin's factories resolve from the root container. `LoggerToken` is
   * already bound to `silentLogger`.
   */
  readonly bindRoot?: (root: DependencyContainer) => void;
}

/** One check of the plugin contract; `run` throws a PluginError saying what to fix. */
export interface PluginConformanceCheck {
  /** Completes "should ...". */
  readonly title: string;
  run(plugin: Plugin, options: PluginConformanceOptions): Promise<void>;
}

export interface PluginConformanceResult {
  readonly title: string;
  /** The failure, or `undefined` when the check passed. */
  readonly error: unknown;
}

const unknownOptionKey = 'conformanceCheckUnknownKey';

function createRoot(options: PluginConformanceOptions): DependencyContainer {
  const root = globalContainer.createChildContainer();
  registerValue(root, LoggerToken, silentLogger);
  options.bindRoot?.(root);
  return root;
}

function registerAndResolve(plugin: Plugin, options: PluginConformanceOptions): { registry: PluginRegistry; values: unknown[] } {
  const registry = new PluginRegistry(createRoot(options));
  registry.add(plugin, options.validConfig);
  return { registry, values: plugin.provides.map((token) => registry.resolve(plugin, token)) };
}

const globalRegistrationMethods = ['register', 'registerInstance', 'registerSingleton', 'registerType'] as const;

/** The checks every plugin package's tests run (through `runPluginConformance`). */
export const pluginConformanceChecks: readonly PluginConformanceCheck[] = Object.freeze([
  {
    title: 'be a plugin made by definePlugin',
    run: async (plugin) => {
      if (!isPlugin(plugin)) {
        throw new PluginError('The value under test is not a plugin made by definePlugin: default-export definePlugin({ ... }).');
      }
    },
  },
  {
    title: 'have the name and version of its package.json',
    run: async (plugin, options) => {
      const file = options.packageJsonPath instanceof URL ? fileURLToPath(options.packageJsonPath) : options.packageJsonPath;
      const manifest = JSON.parse(await readFile(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (plugin.name !== manifest.name || plugin.version !== manifest.version) {
        throw new PluginError(
          `Plugin ${plugin.name}@${plugin.version} does not match ${file} (${String(manifest.name)}@${String(manifest.version)}): ` +
            "definePlugin's name and version must equal the package.json's.",
          { file },
        );
      }
    },
  },
  {
    title: 'accept the valid example options',
    run: async (plugin, options) => {
      validatePluginOptions(plugin, options.validConfig);
    },
  },
  {
    title: 'reject unknown option keys',
    run: async (plugin, options) => {
      const result = plugin.configSchema.safeParse({ ...options.validConfig, [unknownOptionKey]: true });
      if (result.success || !result.error.issues.some((issue) => issue.code === 'unrecognized_keys')) {
        throw new PluginError(
          `Plugin ${plugin.name}'s configSchema does not reject the unknown key "${unknownOptionKey}": ` +
            'build it with z.strictObject so that a misspelt option in `with:` is reported instead of ignored.',
        );
      }
    },
  },
  {
    title: 'bind every provided token on a fresh child container',
    run: async (plugin, options) => {
      registerAndResolve(plugin, options);
    },
  },
  {
    title: 'do nothing when registered twice with the same options',
    run: async (plugin, options) => {
      const { registry, values } = registerAndResolve(plugin, options);
      registry.add(plugin, options.validConfig);
      plugin.provides.forEach((token, index) => {
        if (registry.resolve(plugin, token) !== values[index]) {
          throw new PluginError(`Registering ${plugin.name} twice changed what it provides under ${token.id}.`);
        }
      });
    },
  },
  {
    title: 'register independently in two runs',
    run: async (plugin, options) => {
      registerAndResolve(plugin, options);
      registerAndResolve(plugin, options);
    },
  },
  {
    title: "not touch tsyringe's global container",
    run: async (plugin, options) => {
      const touched: string[] = [];
      const originals = globalRegistrationMethods.map((method) => [method, Object.getOwnPropertyDescriptor(globalContainer, method)] as const);
      for (const method of globalRegistrationMethods) {
        const original = globalContainer[method].bind(globalContainer) as (...args: unknown[]) => DependencyContainer;
        Object.defineProperty(globalContainer, method, {
          configurable: true,
          value: (...args: unknown[]) => {
            touched.push(`${method}(${String(args[0])})`);
            return original(...args);
          },
        });
      }
      try {
        registerAndResolve(plugin, options);
      } finally {
        for (const [method, descriptor] of originals) {
          if (descriptor === undefined) Reflect.deleteProperty(globalContainer, method);
          else Object.defineProperty(globalContainer, method, descriptor);
        }
      }
      if (touched.length > 0) {
        throw new PluginError(
          `Plugin ${plugin.name} registered on tsyringe's global container: ${touched.join(', ')}. ` +
            'Bind only on the container register() receives (no @singleton, @registry or container.register).',
        );
      }
    },
  },
]);

/** Runs every check outside a test framework and returns the results (all of them, in order). */
export async function checkPluginConformance(plugin: Plugin, options: PluginConformanceOptions): Promise<PluginConformanceResult[]> {
  const results: PluginConformanceResult[] = [];
  for (const check of pluginConformanceChecks) {
    try {
      await check.run(plugin, options);
      results.push({ title: check.title, error: undefined });
    } catch (error) {
      results.push({ title: check.title, error });
    }
  }
  return results;
}
