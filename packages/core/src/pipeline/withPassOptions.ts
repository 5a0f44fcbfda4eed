import type { LoadedConfig } from '../config/loadConfig.js';
import type { JsonValue } from '../contracts/JsonValue.js';

/** `loaded` with `passOptions[i]` merged over the `with:` of pass `i` (the final recovery's longer settings). */
export function withPassOptions(loaded: LoadedConfig, passOptions: ReadonlyArray<Readonly<Record<string, JsonValue>> | undefined> | undefined): LoadedConfig {
  if (passOptions === undefined) return loaded;
  const passes = loaded.config.passes.map((use, index) => {
    const extra = passOptions[index];
    return extra === undefined ? use : { ...use, with: { ...use.with, ...extra } };
  });
  return { ...loaded, config: { ...loaded.config, passes } };
}
