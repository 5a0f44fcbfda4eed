import * as z from 'zod';
import { autoGlmConfigSchema } from './configSchema.js';

/** A JSON Schema (draft 2020-12) document. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/**
 * The JSON Schema of `autoglm.yaml` as written (defaults optional), for editors
 * (`# yaml-language-server: $schema=...`) and `autoglm schema`.
 */
export function configJsonSchema(): JsonSchema {
  return {
    ...z.toJSONSchema(autoGlmConfigSchema, { io: 'input', target: 'draft-2020-12' }),
    title: 'Open-AutoGLM config',
  };
}
