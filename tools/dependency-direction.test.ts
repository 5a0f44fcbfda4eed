import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The architecture's dependency rule, checked on package.json files and on source imports:
// core depends on no workspace package; the engine (onnx, runtime) only on core and each other
// in one direction; plugins on core and the engine, never on another plugin; the CLI on core and
// the engine, never on a plugin (it loads them by name at run time); nothing on the CLI.
const root = new URL('..', import.meta.url).pathname;
const ENGINE = new Set(['@open-autoglm/onnx', '@open-autoglm/runtime']);
const allowed: Record<string, (dep: string) => boolean> = {
  '@open-autoglm/core': () => false,
  '@open-autoglm/onnx': (dep) => dep === '@open-autoglm/core',
  '@open-autoglm/runtime': (dep) => dep === '@open-autoglm/core' || dep === '@open-autoglm/onnx',
  '@open-autoglm/cli': (dep) => dep === '@open-autoglm/core' || ENGINE.has(dep),
};
const pluginRule = (dep: string): boolean => dep === '@open-autoglm/core' || ENGINE.has(dep);

interface Workspace {
  name: string;
  dir: string;
  deps: string[];
}

function workspaces(): Workspace[] {
  const result: Workspace[] = [];
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(root, group))) {
      const manifest = join(root, group, entry, 'package.json');
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      const deps = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.devDependencies });
      result.push({ name: pkg.name, dir: join(root, group, entry), deps: deps.filter((d) => d.startsWith('@open-autoglm/')) });
    }
  }
  return result;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts')) out.push(full);
  }
  return out;
}

describe('dependency direction', () => {
  const all = workspaces();

  it('should find the workspace packages', () => {
    expect(all.map((w) => w.name)).toEqual(expect.arrayContaining(Object.keys(allowed)));
  });

  for (const ws of all) {
    it(`should keep ${ws.name}'s declared dependencies within the architecture`, () => {
      const rule = allowed[ws.name] ?? pluginRule;
      expect(ws.deps.filter((dep) => !rule(dep))).toEqual([]);
    });

    it(`should import only the workspace packages ${ws.name} declares`, () => {
      const imported = new Set<string>();
      for (const file of sourceFiles(join(ws.dir, 'src'))) {
        for (const m of readFileSync(file, 'utf8').matchAll(/from\s+'(@open-autoglm\/[a-z0-9-]+)/g)) {
          if (m[1] !== ws.name) imported.add(m[1] as string);
        }
      }
      expect([...imported].filter((dep) => !ws.deps.includes(dep))).toEqual([]);
    });
  }
});
