import { defineConfig } from 'vitest/config';

// Mutation testing runs only the reference solutions through the lab tests (src/reference-modules.test.ts),
// with the workspace packages resolved to their sources as in ../../../vitest.shared.ts.
const conditions = ['@spf/source', 'module', 'node', 'import', 'default'];
export default defineConfig({
  root: new URL('..', import.meta.url).pathname,
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { include: ['src/reference-modules.test.ts'], testTimeout: 60_000 },
});
