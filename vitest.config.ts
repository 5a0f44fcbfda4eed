import { defineConfig } from 'vitest/config';

// Tests import workspace packages through the "@open-autoglm/source" export condition, so they
// run against TypeScript sources without a build; the CLI tests run the built binary.
const conditions = ['@open-autoglm/source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@open-autoglm/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'examples/**/*.test.ts', 'tools/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
