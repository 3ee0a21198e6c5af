import { defineConfig } from 'vitest/config';

// Unit tests of the workbench logic (node) and the Chromium end-to-end tests (test/e2e.test.ts), which
// build the site if needed, serve it on a free port and drive Debian's /usr/bin/chromium.
export default defineConfig({
  resolve: { conditions: ['@spf/source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@spf/source', 'module', 'node', 'import', 'default'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 240_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
