import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configJsonSchema } from './configJsonSchema.js';
import { parseConfigText } from './loadConfig.js';

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
};

/**
 * Checks the parts of JSON Schema the config uses (objects, closed or open; arrays; anyOf;
 * enums; required keys) and returns the paths it rejects: an independent check of the
 * generated schema, not of zod.
 */
function rejectedPaths(schema: Schema, value: unknown, at = '$'): string[] {
  if (schema.anyOf) {
    const results = schema.anyOf.map((option) => rejectedPaths(option, value, at));
    return results.some((problems) => problems.length === 0) ? [] : [`${at} (no alternative matches)`];
  }
  if (schema.enum && !schema.enum.includes(value)) return [`${at} (not in enum)`];
  if (schema.type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at} (not an object)`];
    const problems: string[] = [];
    for (const key of schema.required ?? []) if (!(key in value)) problems.push(`${at}.${key} (missing)`);
    for (const [key, child] of Object.entries(value)) {
      const childSchema = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (childSchema === undefined) {
        if (schema.additionalProperties === false) problems.push(`${at}.${key} (not allowed)`);
        continue;
      }
      problems.push(...rejectedPaths(childSchema, child, `${at}.${key}`));
    }
    return problems;
  }
  if (schema.type === 'array') {
    if (!Array.isArray(value)) return [`${at} (not an array)`];
    return value.flatMap((item, index) => (schema.items ? rejectedPaths(schema.items, item, `${at}[${index}]`) : []));
  }
  if (schema.type === 'string' && typeof value !== 'string') return [`${at} (not a string)`];
  if ((schema.type === 'number' || schema.type === 'integer') && typeof value !== 'number') return [`${at} (not a number)`];
  if (schema.type === 'boolean' && typeof value !== 'boolean') return [`${at} (not a boolean)`];
  return [];
}

async function architectureExample(): Promise<string> {
  const notes = await readFile('/work/shared/notes/architecture.md', 'utf8').catch(() => undefined);
  const match = notes?.match(/```yaml\n([\s\S]*?)```/);
  return match?.[1] ?? 'model: ./m.onnx\n';
}

describe('configJsonSchema', () => {
  const schema = configJsonSchema() as Schema & { $schema?: string; title?: string };

  it('should be a closed draft 2020-12 object schema with the config sections', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.title).toBe('Open-AutoGLM config');
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties ?? {})).toEqual(['model', 'data', 'target', 'objectives', 'search', 'passes', 'output']);
    expect(schema.required).toEqual(['model', 'data', 'objectives', 'search', 'passes']);
    expect(schema.properties?.model).toMatchObject({ type: 'string', minLength: 1 });
    expect(schema.properties?.target?.additionalProperties).toBe(false);
    expect(schema.properties?.target?.properties?.device?.enum).toContain('cpu');
    // `with:` stays open: each plugin validates it.
    expect(schema.properties?.search?.properties?.with).toMatchObject({ type: 'object', additionalProperties: {} });
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it('should accept the architecture example and reject unknown keys', async () => {
    const example = await architectureExample();
    expect(() => parseConfigText(example, '/project/autoglm.yaml')).not.toThrow();
    const document = parse(example) as Record<string, unknown>;
    expect(rejectedPaths(schema, document)).toEqual([]);
    expect(rejectedPaths(schema, { ...document, modle: 'x' })).toEqual(['$.modle (not allowed)']);
    expect(rejectedPaths(schema, { ...document, target: { device: 'gpu' } })).toEqual(['$.target.device (not in enum)']);
  });
});
