import { defineConfig } from 'vitest/config';

/**
 * Shared vitest configuration. Workspace packages are resolved to their TypeScript sources through the
 * `@spf/source` export condition, so a package's tests never run against a stale build of a dependency.
 */
export const sharedConfig = defineConfig({
  resolve: { conditions: ['@spf/source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@spf/source', 'module', 'node', 'import', 'default'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'threads',
  },
});
