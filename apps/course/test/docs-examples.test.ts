import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'sucrase';
import { afterAll, describe, expect, it, vi } from 'vitest';

// Every TypeScript example on a package page that imports an @spf package really runs: it is extracted,
// stripped of types, and imported here. Examples that import packages this app does not depend on are
// listed as skipped.
const DOCS = fileURLToPath(new URL('../src/content/docs/packages/', import.meta.url));
const TMP = fileURLToPath(new URL('./.examples/', import.meta.url));
const AVAILABLE = new Set([
  '@spf/machine',
  '@spf/pagetable',
  '@spf/locks',
  '@spf/labs',
  '@spf/vma',
  '@spf/fault-classic',
  '@spf/fault-spec',
  '@spf/file-backed',
  '@spf/kernel',
  '@spf/bench',
]);

type Example = { page: string; index: number; code: string; imports: string[] };
const examples: Example[] = [];
for (const f of readdirSync(DOCS).filter((x) => x.endsWith('.md'))) {
  const text = readFileSync(join(DOCS, f), 'utf8');
  [...text.matchAll(/```ts\n([\s\S]*?)```/g)].forEach((m, index) => {
    const imports = [...m[1].matchAll(/from '(@spf\/[\w-]+)'/g)].map((x) => x[1]);
    if (imports.length > 0 && !/^\s*import type/m.test(m[1].split('\n')[0] ?? '') && /^import /m.test(m[1])) {
      examples.push({ page: f, index, code: m[1], imports });
    }
  });
}

describe('package pages: code examples run', () => {
  mkdirSync(TMP, { recursive: true });
  afterAll(() => rmSync(TMP, { recursive: true, force: true }));
  it('has examples to check', () => expect(examples.length).toBeGreaterThanOrEqual(3));
  for (const ex of examples) {
    const runnable = ex.imports.every((i) => AVAILABLE.has(i));
    it.skipIf(!runnable)(`${ex.page} example ${ex.index + 1}`, async () => {
      const js = transform(ex.code, { transforms: ['typescript'], disableESTransforms: true }).code;
      const file = join(TMP, `${ex.page.replace('.md', '')}-${ex.index}.mjs`);
      writeFileSync(file, js);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      try {
        await import(/* @vite-ignore */ file);
      } finally {
        log.mockRestore();
      }
    });
  }
});
